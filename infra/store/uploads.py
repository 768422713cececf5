"""Evidence photos (证据照片), stored content-addressed on disk: `<root>/ab/cdef…` named by their SHA-256.

Only real images are accepted, recognised by their first bytes (JPEG, PNG, GIF, WebP), never by
the name or the declared type; and none larger than the domain's MAX_EVIDENCE_BYTES. Writing is
atomic (a temporary file renamed into place) and idempotent: the same bytes twice are one file.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import Any

from domain.kernel.base import DomainError, NotFound
from domain.problem.events import MAX_EVIDENCE_BYTES

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
                                "only JPEG, PNG, GIF or WebP images are accepted",
                                accepted=["image/jpeg", "image/png", "image/gif", "image/webp"])


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
