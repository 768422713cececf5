"""Evidence photos (证据照片), stored content-addressed on disk: `<root>/ab/cdef…` named by their SHA-256,
and registered per campaign in PostgreSQL (`dudao_evidence`).

Only real images are accepted, recognised by their first bytes (JPEG, PNG, GIF, WebP), never by
the name or the declared type; and none larger than the domain's MAX_EVIDENCE_BYTES. Writing is
atomic (a temporary file renamed into place) and idempotent: the same bytes twice are one file.

The registry says which campaign an upload belongs to (the same photo uploaded in two campaigns is
two rows), its type and size, and who uploaded it. A command citing a photo is decided against it
(`known_evidence`: what the gather hands the decision), so a photo never uploaded, or uploaded to
another campaign, is refused (`evidence_not_found`); serving a photo checks it too. The table is
created when the API starts and on the first upload; reading before it exists finds nothing.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from uuid import UUID

from pydantic import BaseModel

from domain.kernel.base import Actor, DomainError, NotFound
from domain.problem.events import EVIDENCE_MEDIA_TYPES, MAX_EVIDENCE_BYTES, EvidenceRef

SHA256 = re.compile(r"^[0-9a-f]{64}$")


class UnsupportedMediaType(DomainError):
    """The upload is not an image we accept (415)."""

    status = 415


class PayloadTooLarge(DomainError):
    """The upload is over the size limit (413)."""

    status = 413


def image_type(head: bytes) -> str | None:
    """The media type of an image from its magic bytes, or None when it is not JPEG, PNG, GIF or WebP."""
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return None


def unsupported() -> UnsupportedMediaType:
    return UnsupportedMediaType("unsupported_media_type", "只接受 JPEG、PNG、GIF 或 WebP 图片",
                                "only JPEG, PNG, GIF or WebP images are accepted", accepted=list(EVIDENCE_MEDIA_TYPES))


def too_large(size: int | None = None) -> PayloadTooLarge:
    return PayloadTooLarge("payload_too_large", "照片超过大小上限", "the photo is over the size limit",
                           max_bytes=MAX_EVIDENCE_BYTES, size=size)


class EvidenceStore:
    """The content-addressed photo store under `root` (normally `<DUDAO_VAR_DIR>/uploads`)."""

    def __init__(self, root: Path, max_bytes: int = MAX_EVIDENCE_BYTES) -> None:
        self.root = Path(root)
        self.max_bytes = max_bytes

    def path_for(self, sha256: str) -> Path:
        if not SHA256.match(sha256):
            raise NotFound("evidence_not_found", "证据照片不存在", "evidence not found", sha256=sha256)
        return self.root / sha256[:2] / sha256[2:]

    def put(self, data: bytes) -> dict[str, Any]:
        """Store the image once; returns its evidence reference {sha256, media_type, size}."""
        if len(data) > self.max_bytes:
            raise too_large(len(data))
        media_type = image_type(data[:16])
        if media_type is None or not data:
            raise unsupported()
        digest = hashlib.sha256(data).hexdigest()
        target = self.path_for(digest)
        if not target.exists():
            self._write_atomically(target, data)
        return {"sha256": digest, "media_type": media_type, "size": len(data)}

    def get(self, sha256: str) -> tuple[Path, str]:
        """The stored file and its media type, or 404."""
        path = self.path_for(sha256)
        if not path.is_file():
            raise NotFound("evidence_not_found", "证据照片不存在", "evidence not found", sha256=sha256)
        with path.open("rb") as f:
            media_type = image_type(f.read(16)) or "application/octet-stream"
        return path, media_type

    @staticmethod
    def _write_atomically(target: Path, data: bytes) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, target)  # same bytes from a concurrent writer: either rename wins harmlessly
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


# --- the registry: which campaign each upload belongs to --------------------------------------------

EVIDENCE_DDL = (
    "CREATE TABLE IF NOT EXISTS dudao_evidence ("
    " campaign_id uuid NOT NULL, sha256 text NOT NULL, media_type text NOT NULL, size integer NOT NULL,"
    " uploaded_by uuid NULL, uploader_role text NOT NULL,"
    " uploaded_at timestamptz NOT NULL DEFAULT clock_timestamp(),"
    " PRIMARY KEY (campaign_id, sha256))"
)


def ensure_evidence_table(conn: Any) -> None:
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('dudao_evidence_ddl'))")
        conn.execute(EVIDENCE_DDL)


def record_evidence(conn: Any, ref: EvidenceRef, campaign_id: UUID, uploader: Actor) -> None:
    """Register an upload in a campaign (once: a second upload of the same photo there keeps the first row)."""
    ensure_evidence_table(conn)  # uploads are few; this spares every caller a migration step
    with conn.transaction():
        conn.execute(
            "INSERT INTO dudao_evidence (campaign_id, sha256, media_type, size, uploaded_by, uploader_role)"
            " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (campaign_id, sha256) DO NOTHING",
            (campaign_id, ref.sha256, ref.media_type, ref.size, uploader.person_id, uploader.role),
        )


def _registry_exists(conn: Any) -> bool:
    row = conn.execute("SELECT to_regclass('dudao_evidence') IS NOT NULL AS present").fetchone()
    return bool(row["present"] if isinstance(row, dict) else row[0])


def known_evidence(conn: Any, campaign_id: UUID, sha256s: Iterable[str]) -> dict[str, EvidenceRef]:
    """Of the given photos, those uploaded to the campaign, as recorded (type and size), by SHA-256."""
    wanted = sorted(set(sha256s))
    if not wanted or not _registry_exists(conn):
        return {}
    rows = conn.execute("SELECT sha256, media_type, size FROM dudao_evidence WHERE campaign_id = %s"
                        " AND sha256 = ANY(%s)", (campaign_id, wanted)).fetchall()
    refs = (EvidenceRef(**r) if isinstance(r, dict) else EvidenceRef(sha256=r[0], media_type=r[1], size=r[2])
            for r in rows)
    return {ref.sha256: ref for ref in refs}


def evidence_campaigns(conn: Any, sha256: str) -> frozenset[UUID]:
    """The campaigns a photo was uploaded to (none for a photo never registered)."""
    if not _registry_exists(conn):
        return frozenset()
    rows = conn.execute("SELECT campaign_id FROM dudao_evidence WHERE sha256 = %s", (sha256,)).fetchall()
    return frozenset(r["campaign_id"] if isinstance(r, dict) else r[0] for r in rows)


def cited_evidence(value: Any) -> tuple[EvidenceRef, ...]:
    """Every photo a command (or any value model) cites, however deeply nested (a visit's findings)."""
    if isinstance(value, EvidenceRef):
        return (value,)
    if isinstance(value, dict):
        return tuple(e for v in value.values() for e in cited_evidence(v))
    if isinstance(value, (tuple, list)):
        return tuple(e for v in value for e in cited_evidence(v))
    if isinstance(value, BaseModel):
        return tuple(e for name in type(value).model_fields for e in cited_evidence(getattr(value, name)))
    return ()
