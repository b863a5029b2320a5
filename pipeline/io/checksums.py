"""File checksums (the MD5 that SAFE manifests list)."""

from __future__ import annotations

import hashlib
from pathlib import Path


def file_md5(path: str | Path, chunk_bytes: int = 1 << 20) -> str:
    """Hex MD5 of a file, read in chunks."""
    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(chunk_bytes), b""):
            h.update(chunk)
    return h.hexdigest()
