"""A local HTTP server that serves a simulated world the way the real services serve Sentinel data.

- ``/stac``: a minimal STAC API (landing page, conformance, collections, ``/search`` by GET and POST
  with collections, bbox, datetime, the ``query`` extension and paging) over the world's static
  catalog, with absolute http hrefs;
- ``/files/<path>``: the world's files, with HEAD and HTTP Range (what GDAL's /vsicurl/ needs);
- ``/odata/v1/Products``: CDSE-style product lookup and ``Products(<Id>)/$value`` SAFE zips behind a
  bearer token from ``/auth/token`` (password grant);
- ``/orbits/``: an S3-style bucket (ListObjects v1 with ``prefix`` and ``marker`` paging) of the
  orbit files put in ``server.orbit_files``.

Faults are injected per path (``server.faults[path] = "corrupt-once"`` ...), or at random on every
request (``server.chaos = Chaos(seed=...)``: drops, stalls, 5xx, 429, wrong ranges, truncations, bounded
per path and decided by a hash of (seed, path, request number), so a run's faults do not depend on thread
timing); every byte served is counted per path. This is test infrastructure, independent of the code under test: it filters
items on its own.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random
import socket
import time
from collections import Counter
from dataclasses import dataclass, field
import io
import json
import threading
import uuid
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote, urlparse

import pystac

CONFORMANCE = [
    "https://api.stacspec.org/v1.0.0/core",
    "https://api.stacspec.org/v1.0.0/item-search",
    "https://api.stacspec.org/v1.0.0/item-search#query",
    "https://api.stacspec.org/v1.0.0/collections",
]
USER, PASSWORD = "alice", "s3cret"


def _time(text: str) -> dt.datetime:
    t = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return t if t.tzinfo else t.replace(tzinfo=dt.timezone.utc)


def safe_zip_bytes(safe_dir: Path) -> bytes:
    """The SAFE directory as a zip (members under <name>.SAFE/, fixed dates: the same bytes every time)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        for p in sorted(safe_dir.rglob("*")):
            if p.is_file():
                info = zipfile.ZipInfo(f"{safe_dir.name}/{p.relative_to(safe_dir).as_posix()}", (2020, 1, 1, 0, 0, 0))
                z.writestr(info, p.read_bytes())
    return buf.getvalue()


@dataclass
class Chaos:
    """Random faults on every request: each request of a path draws a fault with probability ``rate``,
    at most ``max_per_path`` faults per path (so every transfer can finish), the draw seeded by
    (``seed``, path, the path's request number).

    Kinds: ``drop`` (connection closed before any answer), ``stall`` (the answer waits ``stall_s``),
    ``503`` and ``429`` (``Retry-After: 0``), ``wrong-range`` (a 206 that starts elsewhere than asked,
    and says so), ``truncate`` (the full Content-Length announced, half the body sent, connection closed).
    """

    seed: int
    rate: float = 0.25
    max_per_path: int = 2
    stall_s: float = 0.5
    kinds: tuple[str, ...] = ("drop", "stall", "503", "429", "wrong-range", "truncate")
    served: Counter = field(default_factory=Counter)
    _requests: Counter = field(default_factory=Counter)
    _faults: Counter = field(default_factory=Counter)
    log: list = field(default_factory=list)  # (request, fault drawn) in order of arrival

    def draw(self, key: str, lock: threading.Lock) -> str:
        """The fault for this request of ``key`` ('' for none); body faults are decided later, per response."""
        with lock:
            n = self._requests[key]
            self._requests[key] += 1
            rng = random.Random(f"{self.seed}/{key}/{n}")
            kind = rng.choice(self.kinds) if rng.random() < self.rate else ""
            if self._faults[key] >= self.max_per_path:
                kind = ""
            self._faults[key] += bool(kind)
            self.log.append((key, kind))
            return kind

    def applied(self, kind: str, lock: threading.Lock) -> None:
        with lock:
            self.served[kind] += 1


class LoopbackServer:
    """An HTTP server on 127.0.0.1 (a free port), serving from a daemon thread."""

    def _start(self, handler) -> None:
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class StacServer(LoopbackServer):
    def __init__(self, world: Path, page_size: int = 2) -> None:
        self.world = Path(world)
        self.page_size = page_size
        self.faults: dict[str, str] = {}
        self.bytes_served: dict[str, int] = {}
        self.requests: list[tuple[str, str]] = []
        self.tokens: set[str] = set()
        self.chaos: Chaos | None = None
        self.lock = threading.Lock()
        self.items = self._load_items()
        self.products = {}
        for safe in sorted((self.world / "sentinel1").glob("*.SAFE")):
            self.products[str(uuid.uuid5(uuid.NAMESPACE_URL, safe.name))] = safe
        self._zips: dict[str, bytes] = {}
        self.orbit_files: dict[str, bytes] = {}
        self._start(self._handler())

    # ------------------------------------------------------------------ content
    def _load_items(self) -> dict[str, list[dict]]:
        catalog = pystac.Catalog.from_file(str(self.world / "catalog.json"))
        out: dict[str, list[dict]] = {}
        for child in catalog.get_children():
            items = []
            for item in child.get_items():
                item.make_asset_hrefs_absolute()
                d = item.to_dict(include_self_link=False, transform_hrefs=False)
                d["links"] = []
                d["collection"] = child.id
                for asset in d["assets"].values():
                    rel = Path(asset["href"]).resolve().relative_to(self.world.resolve()).as_posix()
                    asset["href"] = f"{{base}}/files/{quote(rel)}"
                items.append(d)
            out[child.id] = items
        return out

    def item(self, collection: str, item_id: str) -> dict:
        return json.loads(json.dumps(next(i for i in self.items[collection] if i["id"] == item_id))
                          .replace("{base}", self.url))

    def zip_of(self, product_id: str) -> bytes:
        if product_id not in self._zips:
            self._zips[product_id] = safe_zip_bytes(self.products[product_id])
        return self._zips[product_id]

    def _select(self, params: dict) -> list[dict]:
        collections = params.get("collections") or list(self.items)
        bbox = params.get("bbox")
        dt_range = params.get("datetime")
        query = params.get("query") or {}
        out = []
        for cid in collections:
            for item in self.items.get(cid, []):
                if bbox and not (item["bbox"][0] <= bbox[2] and bbox[0] <= item["bbox"][2]
                                 and item["bbox"][1] <= bbox[3] and bbox[1] <= item["bbox"][3]):
                    continue
                if dt_range:
                    lo, hi = dt_range.split("/")
                    t = _time(item["properties"]["datetime"])
                    if (lo not in ("", "..") and t < _time(lo)) or (hi not in ("", "..") and t > _time(hi)):
                        continue
                ok = True
                for prop, ops in query.items():
                    v = item["properties"].get(prop)
                    for op, ref in ops.items():
                        ok &= {"eq": lambda: v == ref, "neq": lambda: v != ref, "lt": lambda: v is not None and v < ref,
                               "lte": lambda: v is not None and v <= ref, "gt": lambda: v is not None and v > ref,
                               "gte": lambda: v is not None and v >= ref, "in": lambda: v in ref}[op]()
                if ok:
                    out.append(item)
        return out

    # ------------------------------------------------------------------ HTTP
    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def _json(self, obj, status: int = 200) -> None:
                body = json.dumps(obj).replace("{base}", server.url).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.chaos == "truncate":
                    server.chaos.applied("truncate", server.lock)
                    self.wfile.write(body[: len(body) // 2])
                    return self._drop()
                self.wfile.write(body)

            def _drop(self) -> None:
                """Close the connection at once (what a reset or a dead proxy looks like to the client)."""
                self.close_connection = True
                try:
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

            def _status(self, status: int, headers: dict | None = None) -> None:
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_HEAD(self) -> None:  # noqa: N802
                self._route(head=True)

            def do_GET(self) -> None:  # noqa: N802
                self._route()

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length", 0))
                raw = self.rfile.read(length) if length else b""
                self._route(body=raw)

            def _route(self, head: bool = False, body: bytes | None = None) -> None:
                url = urlparse(self.path)
                path = unquote(url.path)
                with server.lock:
                    server.requests.append((self.command, path))
                self.chaos = server.chaos.draw(f"{self.command} {self.path}", server.lock) if server.chaos else ""
                if self.chaos in ("drop", "stall", "503", "429"):
                    server.chaos.applied(self.chaos, server.lock)
                if self.chaos == "drop":
                    return self._drop()
                if self.chaos == "stall":
                    time.sleep(server.chaos.stall_s)
                if self.chaos in ("503", "429"):
                    return self._status(int(self.chaos), {"Retry-After": "0"})
                if path.startswith("/files/"):
                    return self._file(path[len("/files/"):], head)
                if path.rstrip("/") == "/stac":
                    return self._json({
                        "type": "Catalog", "id": "sardem-test", "stac_version": "1.0.0", "description": "test",
                        "conformsTo": CONFORMANCE,
                        "links": [{"rel": "self", "href": "{base}/stac"}, {"rel": "root", "href": "{base}/stac"},
                                  {"rel": "search", "href": "{base}/stac/search", "method": "GET",
                                   "type": "application/geo+json"},
                                  {"rel": "search", "href": "{base}/stac/search", "method": "POST",
                                   "type": "application/geo+json"},
                                  {"rel": "data", "href": "{base}/stac/collections"},
                                  {"rel": "conformance", "href": "{base}/stac/conformance"}]})
                if path == "/stac/conformance":
                    return self._json({"conformsTo": CONFORMANCE})
                if path.startswith("/stac/collections"):
                    cols = [{"type": "Collection", "id": c, "stac_version": "1.0.0", "description": c,
                             "license": "proprietary", "links": [],
                             "extent": {"spatial": {"bbox": [[-180, -90, 180, 90]]},
                                        "temporal": {"interval": [[None, None]]}}} for c in server.items]
                    return self._json({"collections": cols, "links": []})
                if path == "/stac/search":
                    return self._search(url, body)
                if path == "/auth/token":
                    return self._token(body or b"")
                if path.startswith("/odata/v1/Products"):
                    return self._odata(path, url)
                if path == "/orbits/":
                    return self._listing(url)
                if path.startswith("/orbits/") and path[len("/orbits/"):] in server.orbit_files:
                    return self._send(path, server.orbit_files[path[len("/orbits/"):]], head)
                self._status(404)

            def _search(self, url, body: bytes | None) -> None:
                if body is not None:
                    params = json.loads(body or b"{}")
                else:
                    q = {k: v[0] for k, v in parse_qs(url.query).items()}
                    params = {"collections": q["collections"].split(",") if "collections" in q else None,
                              "bbox": [float(x) for x in q["bbox"].split(",")] if "bbox" in q else None,
                              "datetime": q.get("datetime"), "query": json.loads(q["query"]) if "query" in q else None,
                              "limit": q.get("limit"), "token": q.get("token")}
                found = server._select(params)
                start = int(params.get("token") or 0)
                page = found[start: start + server.page_size]
                links = []
                if start + server.page_size < len(found):
                    nxt = dict(params, token=str(start + server.page_size))
                    if body is not None:
                        links.append({"rel": "next", "href": "{base}/stac/search", "method": "POST", "body": nxt})
                    else:
                        qs = parse_qs(url.query)
                        qs["token"] = [nxt["token"]]
                        from urllib.parse import urlencode

                        links.append({"rel": "next", "method": "GET",
                                      "href": "{base}/stac/search?" + urlencode({k: v[0] for k, v in qs.items()})})
                self._json({"type": "FeatureCollection", "features": page, "links": links,
                            "numberMatched": len(found), "numberReturned": len(page)})

            def _listing(self, url) -> None:
                q = {k: v[0] for k, v in parse_qs(url.query).items()}
                keys = sorted(k for k in server.orbit_files if k.startswith(q.get("prefix", "")) and k > q.get("marker", ""))
                page = keys[: server.page_size]
                body = ('<?xml version="1.0" encoding="UTF-8"?><ListBucketResult '
                        'xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>s1-orbits</Name>'
                        f"<Prefix>{q.get('prefix', '')}</Prefix><IsTruncated>{str(len(keys) > len(page)).lower()}"
                        "</IsTruncated>" + "".join(f"<Contents><Key>{k}</Key><Size>{len(server.orbit_files[k])}</Size>"
                                                   "</Contents>" for k in page) + "</ListBucketResult>").encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _token(self, body: bytes) -> None:
                form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
                if form.get("grant_type") != "password" or form.get("client_id") != "cdse-public":
                    return self._json({"error": "invalid_request"}, 400)
                if (form.get("username"), form.get("password")) != (USER, PASSWORD):
                    return self._json({"error": "invalid_grant"}, 401)
                token = uuid.uuid4().hex
                server.tokens.add(token)
                self._json({"access_token": token, "expires_in": 600, "token_type": "Bearer"})

            def _odata(self, path: str, url) -> None:
                if path.rstrip("/") == "/odata/v1/Products":
                    flt = parse_qs(url.query).get("$filter", [""])[0]
                    name = flt.split("Name eq ", 1)[-1].strip("'")
                    value = []
                    for pid, safe in server.products.items():
                        if safe.name == name:
                            data = server.zip_of(pid)
                            value.append({"Id": pid, "Name": safe.name, "ContentLength": len(data),
                                          "Checksum": [{"Algorithm": "MD5", "Value": hashlib.md5(data).hexdigest()}]})
                    return self._json({"value": value})
                pid = path.split("(", 1)[1].split(")", 1)[0]
                auth = self.headers.get("Authorization", "")
                if not auth.startswith("Bearer ") or auth[len("Bearer "):] not in server.tokens:
                    return self._status(401)
                if pid not in server.products:
                    return self._status(404)
                self._send(path, server.zip_of(pid), head=False)

            def _file(self, rel: str, head: bool) -> None:
                target = (server.world / rel).resolve()
                if server.world.resolve() not in target.parents or not target.is_file():
                    return self._status(404)
                self._send("/files/" + rel, target.read_bytes(), head)

            def _send(self, key: str, data: bytes, head: bool) -> None:
                fault = server.faults.get(key, "")
                if fault == "down":
                    return self._status(503, {"Retry-After": "0"})
                if fault == "corrupt-once":
                    server.faults[key] = ""
                    data = bytes(b ^ 0xFF for b in data[:64]) + data[64:]
                rng = self.headers.get("Range")
                start, end = 0, len(data) - 1
                if rng and rng.startswith("bytes="):
                    a, b = rng[len("bytes="):].split(",")[0].split("-")
                    start = int(a) if a else len(data) - int(b)
                    end = min(int(b), len(data) - 1) if (a and b) else len(data) - 1
                    if start >= len(data):
                        return self._status(416, {"Content-Range": f"bytes */{len(data)}"})
                if rng and self.chaos == "wrong-range":  # another range than asked, honestly labelled
                    server.chaos.applied("wrong-range", server.lock)
                    start = (start + 7) % max(len(data), 1)
                    end = max(end, start)
                body = data[start:end + 1]
                self.send_response(206 if rng else 200)
                self.send_header("Accept-Ranges", "bytes")
                self.send_header("Content-Length", str(len(body)))
                if rng:
                    self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
                self.end_headers()
                if not head and self.chaos == "truncate":
                    server.chaos.applied("truncate", server.lock)
                    self.wfile.write(body[: len(body) // 2])
                    return self._drop()
                if not head:
                    self.wfile.write(body)
                    with server.lock:
                        server.bytes_served[key] = server.bytes_served.get(key, 0) + len(body)

        return Handler
