"""Robust HTTP downloads: resume, retries with backoff, verification, atomic rename, progress.

Services that hold Sentinel data time out, rate-limit (429 with ``Retry-After``), drop
connections and expire tokens. :func:`download` therefore

- writes to ``<target>.part`` and renames it into place only once complete and verified, so no
  partial file ever appears under the final name;
- resumes an interrupted transfer with an HTTP ``Range`` request (a server that ignores it
  restarts the file);
- retries connection errors, timeouts, 5xx and 429 with exponential backoff, honouring
  ``Retry-After``; gives up after ``max_attempts`` with an error that names the URL;
- stops at once on 401/403 with an error about credentials;
- verifies the size (``Content-Length``, or the expected size) and, when given, the MD5
  (e.g. from a SAFE manifest); a mismatch discards the data and fetches again;
- checks every response against its request before keeping a byte: a 206 must start at the
  byte asked for, a 416 must state the total we already have, the server's total must be the
  expected size, the body must be as long as Content-Length says, and the encoding identity
  (asked for); a wrong answer is discarded and the file fetched again from its start;
- bounds every wait by the policy (a Retry-After of a day waits ``backoff_max_s``) and falls
  back to the backoff on an unreadable Retry-After;
- serialises processes that fetch the same target (a lock file beside it, released by the
  system if the holder dies): the second finds the first one's verified file, and a process
  killed mid-transfer leaves a ``.part`` that the next run resumes.

Credentials come only from the environment or ``~/.netrc`` (requests reads it for the host) or
headers the caller builds from the environment (bearer tokens); they are never logged.
:func:`download_many` bounds the number of concurrent transfers per host.
"""

from __future__ import annotations

import email.utils
import logging
import math
import os
import re
import shutil
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable
from urllib.parse import urlparse

import requests
from filelock import FileLock
from tqdm import tqdm

from pipeline.io.checksums import file_md5, matches_record, write_record
from pipeline.errors import SardemError
from pipeline.io.redact import redact

log = logging.getLogger(__name__)


class DownloadError(SardemError, RuntimeError):
    """A file could not be downloaded (the message names the URL and the last problem)."""


class CredentialsError(DownloadError):
    """The server refused the credentials (401/403)."""


@dataclass(frozen=True)
class DownloadPolicy:
    """Timeouts (s), attempts and backoff of :func:`download`."""

    connect_timeout_s: float = 10.0
    read_timeout_s: float = 60.0
    max_attempts: int = 6
    backoff_s: float = 2.0
    backoff_max_s: float = 120.0
    chunk_bytes: int = 1 << 20


def check_file(path: Path, expected_size: int | None, expected_md5: str | None) -> str | None:
    """What is wrong with a file against its expected size (bytes) and MD5 (hex), or None."""
    size = path.stat().st_size
    if expected_size is not None and size != expected_size:
        return f"size {size} bytes, expected {expected_size}"
    if expected_md5 is not None and file_md5(path) != expected_md5:
        return "MD5 mismatch"
    return None


def _retry_after_s(response: requests.Response, cap_s: float) -> float | None:
    """The wait the server asks for (seconds or an HTTP date), at most ``cap_s``; None when absent or unreadable."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        wait = float(value)
    except ValueError:
        try:
            parsed = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            log.warning("%s: unreadable Retry-After %r, using the backoff", redact(response.url), value[:40])
            return None
        wait = parsed.timestamp() - time.time() if parsed else 0.0
    if not math.isfinite(wait):
        return None
    return min(max(wait, 0.0), cap_s)


class _BadResponse(Exception):
    """The response does not answer the request (wrong range, length or encoding): retried from scratch."""


def _content_range(response: requests.Response) -> tuple[int | None, int | None, int | None]:
    """(first byte, last byte, total) of a Content-Range header; None where absent or '*'."""
    value = response.headers.get("Content-Range", "")
    m = re.fullmatch(r"\s*bytes\s+(?:(\d+)-(\d+)|\*)/(\d+|\*)\s*", value)
    if not m:
        return None, None, None
    first, last, total = m.groups()
    return (int(first) if first else None, int(last) if last else None, int(total) if total != "*" else None)



def download(
    url: str,
    target: str | Path,
    expected_size: int | None = None,
    expected_md5: str | None = None,
    headers: dict[str, str] | Callable[[], dict[str, str]] | None = None,
    session: requests.Session | None = None,
    policy: DownloadPolicy = DownloadPolicy(),
    progress: bool = True,
) -> Path:
    """Download ``url`` to ``target`` (see the module docstring). Returns ``target``.

    An existing ``target`` is kept when it passes the same checks (a shared cache).
    ``headers`` may be a function, called before each attempt (bearer tokens that expire).
    Processes fetching the same target take turns (a lock file beside it): the second finds the
    first one's verified file. Every response is checked against the request before a byte is
    kept: status, Content-Range (start = the bytes we have, total = the expected size),
    Content-Length against the bytes received, Content-Encoding identity.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    if _reusable(target, expected_size, expected_md5):
        return target
    locks = target.parent / ".locks"  # one lock file per target, out of the way of the files themselves
    locks.mkdir(exist_ok=True)
    with FileLock(str(locks / (target.name + ".lock"))):
        try:
            return _download_locked(url, target, expected_size, expected_md5, headers, session, policy, progress)
        except OSError as exc:
            raise DownloadError(f"{redact(url)} -> {target}: {exc}") from exc


def _download_locked(url: str, target: Path, expected_size: int | None, expected_md5: str | None, headers,
                     session: requests.Session | None, policy: DownloadPolicy, progress: bool) -> Path:
    if _reusable(target, expected_size, expected_md5):
        return target  # another process fetched it while we waited
    part = target.with_name(target.name + ".part")
    session = session or requests.Session()
    last_problem = "no attempt made"
    for attempt in range(1, policy.max_attempts + 1):
        have = part.stat().st_size if part.exists() else 0
        request_headers = dict((headers() if callable(headers) else headers) or {})
        request_headers["Accept-Encoding"] = "identity"  # the bytes as stored: sizes and MD5s refer to them
        if have:
            request_headers["Range"] = f"bytes={have}-"
        wait = min(policy.backoff_s * 2 ** (attempt - 1), policy.backoff_max_s)
        try:
            with session.get(url, headers=request_headers, stream=True,
                             timeout=(policy.connect_timeout_s, policy.read_timeout_s)) as response:
                if response.status_code in (401, 403):
                    raise CredentialsError(
                        f"{redact(url)}: HTTP {response.status_code}: the server refused the credentials; set them in "
                        "the environment or ~/.netrc (see README, 'Credentials'); they are never logged"
                    )
                if response.status_code == 429 or response.status_code >= 500:
                    after = _retry_after_s(response, policy.backoff_max_s)
                    wait = after if after is not None else wait
                    raise requests.HTTPError(f"HTTP {response.status_code}", response=response)
                encoding = response.headers.get("Content-Encoding", "identity").strip().lower()
                if encoding not in ("", "identity"):
                    raise _BadResponse(f"Content-Encoding {encoding!r} although identity was asked for")
                first, _, range_total = _content_range(response)
                if response.status_code == 416 and have:
                    # beyond the end: the part is complete only if the server's total says so
                    if range_total is None or range_total != have or (expected_size not in (None, have)):
                        raise _BadResponse(f"416 for bytes {have}- with Content-Range "
                                           f"{response.headers.get('Content-Range')!r}: the partial file is stale")
                    total = have
                elif response.status_code not in (200, 206):
                    raise DownloadError(f"{redact(url)} -> {target}: HTTP {response.status_code} {response.reason}")
                else:
                    if response.status_code == 206:
                        if first != have:
                            raise _BadResponse(f"asked for bytes {have}-, the server sent Content-Range "
                                               f"{response.headers.get('Content-Range')!r}")
                    elif have:
                        have = 0  # the server ignored the range: start again
                    if range_total is not None and expected_size is not None and range_total != expected_size:
                        raise _BadResponse(f"the server's file has {range_total} bytes, {expected_size} expected")
                    length = response.headers.get("Content-Length")
                    length = int(length) if length is not None and length.strip().isdigit() else None
                    total = range_total if range_total is not None else (
                        have + length if length is not None else expected_size)
                    mode = "ab" if have else "wb"
                    received = 0
                    with open(part, mode) as fh, tqdm(total=total, initial=have, unit="B", unit_scale=True,
                                                      desc=target.name, disable=not progress, leave=False) as bar:
                        for chunk in response.iter_content(policy.chunk_bytes):
                            fh.write(chunk)
                            received += len(chunk)
                            bar.update(len(chunk))
                    if length is not None and received != length:
                        # keep what arrived in order (a resumable prefix) unless the server sent more than it said
                        if received > length:
                            raise _BadResponse(f"received {received} bytes, Content-Length said {length}")
                        raise requests.ConnectionError(f"transfer ended after {received} of {length} bytes")
            size = part.stat().st_size if part.exists() else 0
            want = expected_size if expected_size is not None else total
            if want is not None and size < want:
                raise requests.ConnectionError(f"transfer ended at {size} of {want} bytes")
            problem = check_file(part, want, expected_md5)
            if problem is None:
                os.replace(part, target)
                write_record(target)
                return target
            last_problem = problem
            log.warning("%s: %s, fetching it again", redact(url), last_problem)
            part.unlink(missing_ok=True)
        except CredentialsError:
            part.unlink(missing_ok=True)
            raise
        except _BadResponse as exc:
            last_problem = str(exc)
            part.unlink(missing_ok=True)  # nothing of a wrong answer is kept
            if attempt < policy.max_attempts:
                log.warning("%s -> %s: %s (attempt %d of %d), starting again in %.1f s", redact(url), target.name,
                            last_problem, attempt, policy.max_attempts, wait)
                time.sleep(wait)
        except (requests.ConnectionError, requests.Timeout, requests.HTTPError,
                requests.exceptions.ChunkedEncodingError) as exc:
            last_problem = redact(str(exc))
            if attempt < policy.max_attempts:
                log.warning("%s: %s (attempt %d of %d), retrying in %.1f s", redact(url), last_problem, attempt,
                            policy.max_attempts, wait)
                time.sleep(wait)
    part.unlink(missing_ok=True)
    raise DownloadError(f"{redact(url)} -> {target}: giving up after {policy.max_attempts} attempts: {last_problem}")


def _reusable(target: Path, expected_size: int | None, expected_md5: str | None) -> bool:
    """A file already in the cache passes the caller's checks and its own record (else it is fetched again)."""
    return target.exists() and check_file(target, expected_size, expected_md5) is None and matches_record(target)


def copy_local(source: str | Path, target: str | Path, expected_size: int | None = None,
               expected_md5: str | None = None) -> Path:
    """The local counterpart of :func:`download` (same checks, same atomic rename, same cache rule)."""
    source, target = Path(source), Path(target)
    if _reusable(target, expected_size, expected_md5):
        return target
    if not source.is_file():
        raise DownloadError(f"{source}: no such file")
    problem = check_file(source, expected_size, expected_md5)
    if problem:
        raise DownloadError(f"{source}: {problem}")
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    shutil.copyfile(source, part)
    os.replace(part, target)
    write_record(target)
    return target


def fetch(href: str, target: str | Path, **kwargs) -> Path:
    """Download an http(s) href or copy a local path (``file://`` or plain) to ``target``, verified."""
    if href.startswith(("http://", "https://")):
        return download(href, target, **kwargs)
    if href.startswith("s3://"):
        raise DownloadError(f"{href}: s3:// assets (Earth Search's requester-pays Sentinel-1 bucket) are not "
                            "supported; search Sentinel-1 on the Planetary Computer (the default) or use "
                            "download.sentinel1: safe_zip (CDSE)")
    if "://" in href and not href.startswith("file://"):
        raise DownloadError(f"{href}: unsupported scheme (http, https, file or a local path)")
    return copy_local(href.removeprefix("file://"), target, kwargs.get("expected_size"), kwargs.get("expected_md5"))


def download_many(jobs: list[dict], max_per_host: int = 4, max_workers: int = 8, **kwargs) -> list[Path]:
    """Run :func:`download` for each job (its keyword arguments), at most ``max_per_host`` at once per host."""
    locks: dict[str, threading.Semaphore] = defaultdict(lambda: threading.Semaphore(max_per_host))
    guard = threading.Lock()

    def run(job: dict) -> Path:
        host = urlparse(job["url"]).netloc
        with guard:
            semaphore = locks[host]
        with semaphore:
            return download(**{**kwargs, **job})

    with ThreadPoolExecutor(max_workers=max_workers) as pool:
        return list(pool.map(run, jobs))
