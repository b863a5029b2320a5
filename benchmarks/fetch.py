"""Benchmark: what a Sentinel-1 fetch moves, AOI radar window vs whole SAFE zip (bytes and time).

Serves the default simulated world (``snakemake --cores 8 simulate``) from the test server on
127.0.0.1 (STAC API, /files with Range, CDSE-style OData) and fetches one product per strategy
into a fresh cache, side by side in one run: the whole SAFE zip through OData (what sentinelsat-style
tools do), and the windowed reads of the measurement COGs for AOIs of decreasing size (all XML
files included). Ratios are relative to the whole zip. On loopback the transfer is free, so the
time ratio shows the CPU cost of decoding and re-encoding tiles; over a real network the bytes
dominate.

    python benchmarks/fetch.py [--world resources/simulated] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline.core.grid import MapGrid  # noqa: E402
from pipeline.sources.fetch import fetch_sentinel1_window  # noqa: E402
from pipeline.sources.odata import ODataEndpoints, fetch_safe_zip  # noqa: E402
from tests.stac_server import PASSWORD, USER, StacServer  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--world", default="resources/simulated")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    import json

    truth = json.loads((Path(args.world) / "truth" / "world.json").read_text())
    aoi = MapGrid(**truth["aoi_grid"])
    heights = (float(truth.get("reference_height_m", 0.0)), 4000.0)
    server = StacServer(Path(args.world))
    os.environ.update(CDSE_USERNAME=USER, CDSE_PASSWORD=PASSWORD)
    endpoints = ODataEndpoints(f"{server.url}/odata/v1", f"{server.url}/odata/v1", f"{server.url}/auth/token")
    product = sorted(server.items["sentinel-1-grd"], key=lambda i: i["id"])[0]["id"]
    item = server.item("sentinel-1-grd", product)
    rows = []

    def served() -> int:
        return sum(server.bytes_served.values())

    runs = iter(range(10**6))

    def measure(label: str, fn) -> None:
        times, moved = [], 0
        for _ in range(args.repeat):
            with tempfile.TemporaryDirectory() as tmp:
                server.bytes_served.clear()
                # a query string unique to the run: GDAL's in-process /vsicurl/ cache cannot serve it
                run = next(runs)
                t0 = time.perf_counter()
                fn(Path(tmp), lambda href, r=run: f"{href}?run={r}")
                times.append(time.perf_counter() - t0)
                moved = served()
        rows.append((label, moved, statistics.median(times)))

    measure("whole SAFE zip (OData)", lambda tmp, sign: fetch_safe_zip(product, tmp, endpoints))
    for k in (1, 2, 4):
        grid = MapGrid(aoi.epsg, aoi.left, aoi.top, aoi.resolution, aoi.width // k, aoi.height // k)
        label = f"AOI window, {grid.width * grid.resolution / 1000:.1f} km side"
        measure(label, lambda tmp, sign, g=grid: fetch_sentinel1_window(item, tmp, g, heights, ["VV", "VH"],
                                                                        sign, 16))
    server.close()
    base_bytes, base_time = rows[0][1], rows[0][2]
    print(f"product {product} (VV+VH), heights {heights[0]:.0f}-{heights[1]:.0f} m, median of {args.repeat}")
    print(f"{'strategy':34s} {'MB moved':>9s} {'bytes ratio':>12s} {'time ratio':>11s}")
    for label, moved, t in rows:
        print(f"{label:34s} {moved / 1e6:9.2f} {moved / base_bytes:12.3f} {t / base_time:11.2f}")


if __name__ == "__main__":
    main()
