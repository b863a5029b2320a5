"""Atomic writes: produce under a temporary name next to the target, then rename.

A crash or a bad input never leaves a partial file or directory under its
final name, and an existing result is only replaced once the new one is
complete.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(target: str | Path, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path in the target's directory; rename it to ``target`` on success.

    Works for files and directories (the caller creates what it needs at
    the yielded path). On error the temporary is removed and the target is
    left untouched; temporaries of the same target that a killed process
    left behind are removed on entry.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    # what an earlier attempt killed without a chance to clean up left (SIGKILL: a job over its memory on a
    # cluster); one writer a target at a time, so these are nobody's. mkdtemp's names exactly (8 random
    # characters): not the temporaries of another target whose name extends this one ("x.tif.json")
    for stale in target.parent.glob(f".{glob.escape(target.name)}.{'?' * 8}.tmp"):
        if stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    work = tmp / (target.name + suffix)
    try:
        yield work
        if not work.exists():
            raise FileNotFoundError(f"nothing was written for {target}")
        if target.is_dir() and not target.is_symlink():
            old = target.with_name(f".{target.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(target, old)
            os.replace(work, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(work, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_bytes_atomic(target: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``target`` atomically."""
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)
    return Path(target)


def write_json_atomic(target: str | Path, value) -> Path:
    """Write ``value`` as indented JSON with sorted keys (the same value gives the same bytes), atomically."""
    import json

    return write_bytes_atomic(target, (json.dumps(value, indent=1, sort_keys=True) + "\n").encode())
