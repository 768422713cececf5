"""Audit replay for accountability (问责): trails, as-of views, the hash chain and its digests, escalation replay, dossiers."""
