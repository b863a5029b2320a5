"""Downloads against a real HTTP server on 127.0.0.1 with injected faults (no mocks of our code)."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from pipeline.io.download import CredentialsError, DownloadError, DownloadPolicy, download, download_many

from .stac_server import LoopbackServer

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB
MD5 = hashlib.md5(PAYLOAD).hexdigest()
FAST = DownloadPolicy(connect_timeout_s=2, read_timeout_s=5, max_attempts=4, backoff_s=0.05, chunk_bytes=65536)


class Server(LoopbackServer):
    """Serves PAYLOAD at /<mode>/file; modes inject faults, counters record what was served."""

    def __init__(self) -> None:
        self.bytes_served = 0
        self.requests: list[tuple[str, str | None]] = []
        self.state: dict[str, int] = {}
        self.active = 0
        self.max_active = 0
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # quiet
                pass

            def do_GET(self) -> None:  # noqa: N802
                mode = self.path.strip("/").split("/")[0]
                rng = self.headers.get("Range")
                outer.requests.append((mode, rng))
                count = outer.state.get(mode, 0)
                outer.state[mode] = count + 1
                with outer.lock:
                    outer.active += 1
                    outer.max_active = max(outer.max_active, outer.active)
                try:
                    self._serve(mode, rng, count)
                finally:
                    with outer.lock:
                        outer.active -= 1

            def _serve(self, mode: str, rng: str | None, count: int) -> None:
                if mode == "auth":
                    self.send_response(401)
                    self.end_headers()
                    return
                if mode == "ratelimit" and count == 0:
                    self.send_response(429)
                    self.send_header("Retry-After", "1")
                    self.end_headers()
                    return
                if mode == "slow":
                    time.sleep(0.2)
                if mode in ("longwait", "badwait") and count == 0:
                    self.send_response(503)
                    self.send_header("Retry-After", "86400" if mode == "longwait" else "soon, maybe")
                    self.end_headers()
                    return
                if mode == "gzip":
                    self.send_response(200)
                    self.send_header("Content-Encoding", "gzip")
                    self.send_header("Content-Length", "10")
                    self.end_headers()
                    self.wfile.write(b"\x1f\x8b" + b"\x00" * 8)
                    return
                if mode == "stale416" and rng:
                    self.send_response(416)
                    self.send_header("Content-Range", "bytes */999")
                    self.end_headers()
                    return
                if mode == "trickle":  # 64 KiB every 200 ms: slow enough to be killed mid-file
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(PAYLOAD)))
                    self.end_headers()
                    for i in range(0, len(PAYLOAD), 65536):
                        self.wfile.write(PAYLOAD[i:i + 65536])
                        self.wfile.flush()
                        outer.bytes_served += 65536
                        time.sleep(0.2)
                    return
                start = int(rng.split("=")[1].split("-")[0]) if rng else 0
                if mode == "badrange" and rng:  # answers a range request with the file from byte 0
                    self.send_response(206)
                    self.send_header("Content-Length", str(len(PAYLOAD)))
                    self.send_header("Content-Range", f"bytes 0-{len(PAYLOAD) - 1}/{len(PAYLOAD)}")
                    self.end_headers()
                    self.wfile.write(PAYLOAD)
                    return
                body = PAYLOAD[start:]
                if mode == "corrupt" and count == 0:
                    body = b"\x00" * 100 + body[100:]
                self.send_response(206 if rng else 200)
                self.send_header("Content-Length", str(len(body)))
                if rng:
                    self.send_header("Content-Range", f"bytes {start}-{len(PAYLOAD) - 1}/{len(PAYLOAD)}")
                self.end_headers()
                if mode in ("drop", "badrange", "stale416") and count == 0:
                    half = body[: len(body) // 2]
                    self.wfile.write(half)
                    outer.bytes_served += len(half)
                    self.wfile.flush()
                    self.connection.close()  # the connection dies mid-file
                    return
                self.wfile.write(body)
                outer.bytes_served += len(body)

        self._start(Handler)


@pytest.fixture()
def server():
    s = Server()
    yield s
    s.close()


def test_plain_download_is_verified(server: Server, tmp_path: Path) -> None:
    out = download(f"{server.url}/ok/file", tmp_path / "f.bin", expected_md5=MD5, policy=FAST, progress=False)
    assert out.read_bytes() == PAYLOAD
    # a second call finds the verified file in the cache and fetches nothing
    download(f"{server.url}/ok/file", tmp_path / "f.bin", expected_md5=MD5, policy=FAST, progress=False)
    assert len(server.requests) == 1


def test_dropped_connection_is_resumed_not_restarted(server: Server, tmp_path: Path) -> None:
    out = download(f"{server.url}/drop/file", tmp_path / "f.bin", expected_md5=MD5, policy=FAST, progress=False)
    assert out.read_bytes() == PAYLOAD
    assert server.requests[1][1] is not None and server.requests[1][1].startswith("bytes=")
    # about one file's worth of bytes crossed the wire, not one and a half
    assert server.bytes_served < len(PAYLOAD) * 1.1


def test_corrupted_bytes_are_fetched_again(server: Server, tmp_path: Path) -> None:
    out = download(f"{server.url}/corrupt/file", tmp_path / "f.bin", expected_md5=MD5, policy=FAST, progress=False)
    assert out.read_bytes() == PAYLOAD
    assert server.state["corrupt"] == 2


def test_429_waits_for_retry_after(server: Server, tmp_path: Path) -> None:
    t0 = time.perf_counter()
    download(f"{server.url}/ratelimit/file", tmp_path / "f.bin", policy=FAST, progress=False)
    assert time.perf_counter() - t0 >= 1.0
    assert server.state["ratelimit"] == 2


def test_401_is_a_clear_credentials_error(server: Server, tmp_path: Path) -> None:
    with pytest.raises(CredentialsError, match=r"HTTP 401: the server refused the credentials") as err:
        download(f"{server.url}/auth/file?sv=2021&sig=SECRET", tmp_path / "f.bin", policy=FAST, progress=False)
    assert server.state["auth"] == 1  # no retries
    assert "SECRET" not in str(err.value)  # signed URLs are redacted in messages
    assert [p.name for p in tmp_path.iterdir()] in ([], [".locks"])  # no file, only the lock directory


def test_server_down_fails_after_bounded_retries(tmp_path: Path) -> None:
    s = Server()
    url = f"{s.url}/ok/file"
    s.close()
    t0 = time.perf_counter()
    with pytest.raises(DownloadError, match=r"giving up after 4 attempts"):
        download(url, tmp_path / "f.bin", policy=FAST, progress=False)
    assert time.perf_counter() - t0 < 10
    assert not (tmp_path / "f.bin").exists()


def test_concurrency_is_bounded_per_host(server: Server, tmp_path: Path) -> None:
    jobs = [{"url": f"{server.url}/slow/file{i}", "target": tmp_path / f"f{i}.bin"} for i in range(8)]
    download_many(jobs, max_per_host=2, max_workers=8, policy=FAST, progress=False)
    assert server.max_active <= 2
    assert all((tmp_path / f"f{i}.bin").read_bytes() == PAYLOAD for i in range(8))


@pytest.mark.parametrize("mode", ["badrange", "stale416"])
def test_a_range_answer_that_does_not_fit_is_not_kept(mode: str, server: Server, tmp_path: Path) -> None:
    """The transfer drops half-way; the resume gets a 206 from byte 0 (badrange) or a 416 claiming another
    total (stale416): neither is appended or taken as complete; the file is fetched again, whole and right."""
    target = tmp_path / "f.bin"
    download(f"{server.url}/{mode}/file", target, policy=FAST, progress=False)  # no MD5, no expected size
    assert target.read_bytes() == PAYLOAD
    assert not list(tmp_path.glob("*.part"))


def test_waits_are_bounded_and_odd_headers_tolerated(server: Server, tmp_path: Path) -> None:
    policy = DownloadPolicy(connect_timeout_s=2, read_timeout_s=5, max_attempts=3, backoff_s=0.05, backoff_max_s=0.5)
    t0 = time.perf_counter()
    download(f"{server.url}/longwait/file", tmp_path / "a.bin", expected_md5=MD5, policy=policy, progress=False)
    download(f"{server.url}/badwait/file", tmp_path / "b.bin", expected_md5=MD5, policy=policy, progress=False)
    assert time.perf_counter() - t0 < 10  # a day's Retry-After waited 0.5 s; "soon, maybe" the backoff


def test_an_encoded_body_is_refused(server: Server, tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match=r"gzip/file -> .*f\.bin: giving up.*Content-Encoding 'gzip'"):
        download(f"{server.url}/gzip/file", tmp_path / "f.bin", policy=FAST, progress=False)
    assert [p.name for p in tmp_path.iterdir()] == [".locks"]
    assert all(rng is None for mode, rng in server.requests)  # identity asked, nothing resumed from a bad body


DOWNLOAD_ONE = """
import sys
from pipeline.io.download import DownloadPolicy, download
download(sys.argv[1], sys.argv[2], expected_md5=sys.argv[3] or None,
         policy=DownloadPolicy(connect_timeout_s=2, read_timeout_s=5, max_attempts=4, backoff_s=0.05,
                               chunk_bytes=65536), progress=False)
"""


def test_two_processes_on_one_target(server: Server, tmp_path: Path) -> None:

    target = tmp_path / "f.bin"
    procs = [subprocess.Popen([sys.executable, "-c", DOWNLOAD_ONE, f"{server.url}/slow/file", str(target), MD5],
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for proc in procs:
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
    assert target.read_bytes() == PAYLOAD
    assert server.bytes_served == len(PAYLOAD)  # one fetched, the other found the verified file
    assert not list(tmp_path.glob("*.part"))


def test_a_process_killed_mid_transfer_is_resumed(server: Server, tmp_path: Path) -> None:
    import signal

    target = tmp_path / "f.bin"
    proc = subprocess.Popen([sys.executable, "-c", DOWNLOAD_ONE, f"{server.url}/trickle/file", str(target), MD5])
    part = target.with_name("f.bin.part")
    deadline = time.time() + 30
    def size() -> int:
        try:
            return part.stat().st_size
        except FileNotFoundError:
            return 0

    while time.time() < deadline and size() < len(PAYLOAD) // 4:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    kept = part.stat().st_size
    assert 0 < kept < len(PAYLOAD) and not target.exists()
    # the next run takes the lock the dead process held, resumes from the part, verifies the MD5
    download(f"{server.url}/slow/file", target, expected_md5=MD5, policy=FAST, progress=False)
    assert target.read_bytes() == PAYLOAD
    assert server.requests[-1] == ("slow", f"bytes={kept}-")


def test_a_cached_file_that_changed_is_fetched_again_and_stops_its_readers(server: Server, tmp_path: Path) -> None:
    from pipeline.io.checksums import CacheError, record_problem, verify_cached

    target = tmp_path / "N45E006.SRTMGL1.hgt.zip"
    download(f"{server.url}/plain/file", target, policy=FAST, progress=False)  # no size or MD5 from the caller
    assert record_problem(target) is None and server.bytes_served == len(PAYLOAD)
    download(f"{server.url}/plain/file", target, policy=FAST, progress=False)
    assert server.bytes_served == len(PAYLOAD)  # reused: it matches its record
    target.write_bytes(PAYLOAD[: len(PAYLOAD) // 2])  # truncated in the cache after it was fetched
    assert "524288 bytes, 1048576 when fetched" in record_problem(target)
    # a stage that reads it stops before writing anything, naming the file
    from pipeline.core.grid import aoi_grid_around
    from pipeline.stages.dem import prepare_dem

    out = tmp_path / "dem_egm96.tif"
    with pytest.raises(CacheError, match="N45E006.SRTMGL1.hgt.zip: changed since it was fetched"):
        prepare_dem(tmp_path, aoi_grid_around(45.42, 6.62, 2560), out, tmp_path / "dem_wgs84.tif")
    assert not out.exists()
    # the fetch step (a forced rerun) replaces it, although the caller knows no size or MD5
    download(f"{server.url}/plain/file", target, policy=FAST, progress=False)
    assert target.read_bytes() == PAYLOAD and server.bytes_served == 2 * len(PAYLOAD)
    verify_cached([target])
    target.write_bytes(PAYLOAD[:-1] + b"\x00")  # same size, other bytes: the MD5 sees it
    with pytest.raises(CacheError, match="MD5 differs"):
        verify_cached([target])


SIGNED_LOG = """
import sys
from pipeline.cli import base_parser, run_parser
from pipeline.io import cog_window
cog_window.time.sleep = lambda s: None  # the retries' backoff: not what is tested here
parser = base_parser("t", None)
parser.set_defaults(func=lambda args: cog_window.copy_map_window(sys.argv[1], sys.argv[2], (0, 0, 1, 1), "EPSG:4326"))
sys.exit(run_parser(parser, ["--log-level", "DEBUG"]))
"""


def test_signed_urls_stay_out_of_logs_at_every_level(server: Server, tmp_path: Path) -> None:
    """GDAL's own messages name the URL it reads; with the CLI's logging, their query strings are redacted too."""
    url = f"{server.url}/plain/band.tif?se=2030&sig=SECRET"
    res = subprocess.run([sys.executable, "-c", SIGNED_LOG, url, str(tmp_path / "b.tif")],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 2, res.stderr[-2000:]
    assert f"{server.url}/plain/band.tif?..." in res.stderr  # the URL is logged (by GDAL and by us), redacted
    assert "rasterio" in res.stderr and "SECRET" not in res.stderr and "se=2030" not in res.stderr


def test_atomic_write_removes_what_a_killed_attempt_left(tmp_path: Path) -> None:
    """A process killed inside atomic_path (SIGKILL: no finally) leaves its hidden temporary; the next
    attempt at the same target removes it, and leaves other targets' temporaries alone."""
    from pipeline.io.atomic import atomic_path

    killed = subprocess.run(
        [sys.executable, "-c", "import os, signal, sys\n"
         "from pipeline.io.atomic import atomic_path\n"
         "with atomic_path(sys.argv[1]) as tmp:\n"
         "    tmp.write_text('half')\n"
         "    (tmp.parent / (tmp.name + '.ovr.tmp')).write_text('gdal scratch')\n"
         "    os.kill(os.getpid(), signal.SIGKILL)\n", str(tmp_path / "a.tif")],
    )
    assert killed.returncode == -9
    left = sorted(p.name for p in tmp_path.iterdir())
    assert len(left) == 1 and left[0].startswith(".a.tif.") and left[0].endswith(".tmp"), left
    others = [".b.tif.x1y2z3ab.tmp", ".a.tif.json.x1y2z3ab.tmp"]  # another target's, one extending the name
    for name in others:
        (tmp_path / name).mkdir()
    with atomic_path(tmp_path / "a.tif") as tmp:
        tmp.write_text("whole")
    assert (tmp_path / "a.tif").read_text() == "whole"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*others, "a.tif"])

