"""Downloads against a real HTTP server on 127.0.0.1 with injected faults (no mocks of our code)."""

from __future__ import annotations

import hashlib
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
                start = int(rng.split("=")[1].split("-")[0]) if rng else 0
                body = PAYLOAD[start:]
                if mode == "corrupt" and count == 0:
                    body = b"\x00" * 100 + body[100:]
                self.send_response(206 if rng else 200)
                self.send_header("Content-Length", str(len(body)))
                if rng:
                    self.send_header("Content-Range", f"bytes {start}-{len(PAYLOAD) - 1}/{len(PAYLOAD)}")
                self.end_headers()
                if mode == "drop" and count == 0:
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
    assert not list(tmp_path.iterdir())


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
