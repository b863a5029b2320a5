"""File checksums (the MD5 that SAFE manifests list) and the cache's records of what was fetched.

Each cache directory holds ``.sardem-files.json``: the size and MD5 of every file written there
after it was fetched and verified. Reuse checks a file against its record (size always, MD5 up to
256 MB), so a file truncated or altered in the cache is fetched again by its fetch step, and a
stage that reads it stops with a message before it writes anything. A file cut from a larger one
(a measurement's radar window, a band's AOI window) also records what it was cut from (the
source's name, size and MD5 as the SAFE manifest or the catalog states them): when the source
changes under the same product id (a reprocessed product, a rebuilt simulated world), the window
no longer matches and is cut again.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from pipeline.errors import SardemError


class CacheError(SardemError):
    """A cached file changed since it was fetched (names the file)."""


def file_md5(path: str | Path, chunk_bytes: int = 1 << 20) -> str:
    """Hex MD5 of a file, read in chunks."""
    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(chunk_bytes), b""):
            h.update(chunk)
    return h.hexdigest()


# ---------------------------------------------------------------- cache records

RECORD_NAME = ".sardem-files.json"
MD5_LIMIT_BYTES = 256 << 20  # reuse checks hash files up to this size; larger ones are checked by size


def _record_file(path: Path) -> Path:
    return path.parent / RECORD_NAME


def _read_record(record: Path) -> dict:
    import json

    try:
        return json.loads(record.read_text())
    except (OSError, ValueError):
        return {}


def write_record(path: str | Path, source: dict | None = None) -> None:
    """Note ``path``'s size and MD5 in its directory's record (after it was fetched and verified), and
    ``source`` (JSON scalars: what the file was cut from) where given."""
    import json

    from filelock import FileLock

    from pipeline.io.atomic import write_bytes_atomic

    path = Path(path)
    record = _record_file(path)
    entry = {"size": path.stat().st_size, "md5": file_md5(path)}
    if source is not None:
        entry["source"] = source
    with FileLock(str(record) + ".lock"):
        files = _read_record(record)
        files[path.name] = entry
        write_bytes_atomic(record, (json.dumps(files, indent=1, sort_keys=True) + "\n").encode())


def record_problem(path: str | Path, check_md5: bool = True) -> str | None:
    """What differs between ``path`` and its record: None when it matches, or when it was never recorded
    (files fetched before records existed). Size always; MD5 up to ``MD5_LIMIT_BYTES`` when ``check_md5``."""
    path = Path(path)
    entry = _read_record(_record_file(path)).get(path.name)
    if entry is None:
        return None
    if not path.exists():
        return "missing"
    size = path.stat().st_size
    if size != entry["size"]:
        return f"{size} bytes, {entry['size']} when fetched"
    if check_md5 and size <= MD5_LIMIT_BYTES and file_md5(path) != entry["md5"]:
        return "MD5 differs from when it was fetched"
    return None


def matches_record(path: str | Path, source: dict | None = None) -> bool:
    """Whether a file already in the cache can be reused: it exists and matches its record, and, when
    ``source`` is given, it was recorded as cut from that same source (a mismatch is logged; the
    caller fetches the file again)."""
    import logging

    path = Path(path)
    if not path.exists():
        return False
    problem = record_problem(path)
    if problem is None and source is not None:
        recorded = _read_record(_record_file(path)).get(path.name, {}).get("source")
        if recorded != source:
            problem = f"cut from {recorded}, the product now holds {source}"
    if problem:
        logging.getLogger(__name__).warning("%s: changed since it was fetched (%s): fetching it again", path, problem)
        return False
    return True


def verify_cached(paths: list[str | Path]) -> None:
    """Raise :class:`CacheError` naming the first cached file that changed since it was fetched."""
    for path in paths:
        problem = record_problem(path)
        if problem:
            raise CacheError(f"{path}: changed since it was fetched ({problem}); delete it and run again "
                             "(its fetch rule fetches it anew)")
