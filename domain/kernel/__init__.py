"""Kernel (内核): what every aggregate stands on — the event envelope, errors, the working calendar, the problem taxonomy, roles."""
