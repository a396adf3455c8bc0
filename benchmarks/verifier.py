"""The offline verifier (/verificar) in this machine's Chromium: first-visit weight and offline time from scan
to verdict.

    .venv/bin/python benchmarks/verifier.py [--scans 20]

What it does:

1. starts Anvil (LocalNode), deploys a registry with the test suite's orders (tests/test_verifier_browser.py:
   signed QRs made with eth_account), stamps the valid order's PDF with its signed QR, and serves the page with
   uvicorn on 127.0.0.1, every answer's bytes counted by path as they leave the server (gzip where the browser
   asks for it, which Chromium does);
2. first visit: a fresh phone-sized Chromium context opens /verificar and waits until the app is ready and its
   service worker controls the page and has kept everything it needs offline. Weight = the body bytes the
   server sent (page, scripts, styles, manifest, icons, service worker, its precache, the trust pack), plus
   the response headers. "with decoder" is that visit (Debian's Chromium has no BarcodeDetector, so jsQR is
   fetched); "without decoder" is the same visit minus jsQR's bytes, which a browser with BarcodeDetector
   never fetches (the app and the service worker both skip it);
3. offline: the context is set offline, the app reloaded from its service worker, and the QR scanned `--scans`
   times with Chromium's fake camera fed a video (ffmpeg) of a 150-dpi render (pdftoppm) of the stamped page.
   The app stamps performance.now() when the decoder returns the QR text and again when the verdict is on the
   page (payload decoded, EIP-712 digest, public-key recovery, trust-pack lookups, DOM written): that
   difference is "scan to verdict". The first scan after a load is kept apart (noble's tables are built then).

Goals (issue 17): first visit <= 150 KB compressed with the decoder, <= 60 KB without; scan to verdict
<= 100 ms after the QR is found. Writes benchmarks/results/verifier.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from peru_compras.chain.node import LocalNode, free_port  # noqa: E402
from peru_compras.chain.rpc import Rpc  # noqa: E402
from tests.test_verifier_browser import (  # noqa: E402
    CHROMIUM,
    PHONE,
    ThreadedServer,
    chromium_args,
    deploy_site,
    make_camera_video,
)

DECODER = "/verificar/vendor/jsqr/jsQR.js"
GOALS = {"with_decoder_kb": 150, "without_decoder_kb": 60, "scan_to_verdict_ms": 100}


class Counting:
    """ASGI wrapper: the body and header bytes of every answer, by path."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.body: dict[str, int] = defaultdict(int)
        self.headers: dict[str, int] = defaultdict(int)
        self.requests: list[tuple[str, int]] = []

    def reset(self) -> None:
        self.body.clear()
        self.headers.clear()
        self.requests.clear()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]

        async def counted(message: Any) -> None:
            if message["type"] == "http.response.start":
                self.headers[path] += sum(len(k) + len(v) + 4 for k, v in message.get("headers", [])) + 17
                self.requests.append((path, message["status"]))
            elif message["type"] == "http.response.body":
                self.body[path] += len(message.get("body", b""))
            await send(message)

        await self.app(scope, receive, counted)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scans", type=int, default=20)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with LocalNode() as node, tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        port = free_port()
        site, app = deploy_site(Rpc(node.url), folder, port)
        counting = Counting(app)
        video = make_camera_video(site.pdfs["valid"], folder)
        with ThreadedServer(counting, port), sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=chromium_args(video))
            context = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True,
                                          locale="es-PE", permissions=["camera"])
            page = context.new_page()
            counting.reset()
            page.goto(site.base_url + "/verificar")
            page.locator("body[data-ready='1']").wait_for(timeout=30_000)
            page.wait_for_function("navigator.serviceWorker.controller !== null", timeout=30_000)
            cached = page.evaluate("""async () => { const names = await caches.keys();
                const cache = await caches.open(names.find((n) => n.startsWith('verificar-')));
                return (await cache.keys()).map((r) => new URL(r.url).pathname); }""")
            time.sleep(1.0)  # any background revalidation the service worker started
            body = dict(counting.body)
            headers = dict(counting.headers)
            requests = list(counting.requests)
            total = sum(body.values()) + sum(headers.values())
            decoder = body.get(DECODER, 0) + headers.get(DECODER, 0)
            decoder_used = page.locator("body").get_attribute("data-decoder")

            context.set_offline(True)
            counting.reset()
            page.reload()
            page.locator("body[data-ready='1']").wait_for(timeout=30_000)
            first: float | None = None
            times: list[float] = []
            for index in range(args.scans):
                page.locator("#verdict").evaluate("e => e.removeAttribute('data-overall')")
                page.locator("#scan").click()
                verdict = page.locator("#verdict[data-overall]")
                verdict.wait_for(timeout=30_000)
                if verdict.get_attribute("data-overall") != "ok":
                    raise SystemExit(f"scan {index}: verdict {verdict.get_attribute('data-overall')}, not ok")
                elapsed = float(verdict.get_attribute("data-ms") or "nan")
                if index == 0:
                    first = elapsed
                else:
                    times.append(elapsed)
            offline_requests = list(counting.requests)
            chromium_version = browser.version
            browser.close()

    result = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"python": platform.python_version(), "cpu": platform.processor() or platform.machine(),
                    "chromium": chromium_version,
                    "load_average": [round(x, 2) for x in os.getloadavg()]},
        "first_visit": {
            "decoder_in_this_browser": decoder_used,
            "with_decoder_bytes": total,
            "with_decoder_kb": round(total / 1024, 1),
            "without_decoder_bytes": total - decoder,
            "without_decoder_kb": round((total - decoder) / 1024, 1),
            "decoder_bytes": decoder,
            "body_bytes_by_path": dict(sorted(body.items(), key=lambda item: -item[1])),
            "header_bytes": sum(headers.values()),
            "requests": len(requests),
            "answers": [f"{status} {path}" for path, status in requests],
            "service_worker_keeps": sorted(cached),
        },
        "offline": {
            "scans": args.scans,
            "first_scan_ms": first,
            "scan_to_verdict_ms": {"median": round(statistics.median(times), 1), "max": round(max(times), 1),
                                   "min": round(min(times), 1)} if times else None,
            "requests_reaching_the_server": len(offline_requests),
        },
        "goals": GOALS,
    }
    worst = max(times + ([first] if first is not None else [])) if times else None
    result["pass"] = {"with_decoder": total / 1024 <= GOALS["with_decoder_kb"],
                      "without_decoder": (total - decoder) / 1024 <= GOALS["without_decoder_kb"],
                      "scan_to_verdict": worst is not None and worst <= GOALS["scan_to_verdict_ms"]}
    out = ROOT / "benchmarks" / "results" / "verifier.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({key: result[key] for key in ("first_visit", "offline", "pass")}, indent=2))


if __name__ == "__main__":
    main()
