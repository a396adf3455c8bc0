"""Verification page throughput: order pages and JSON API under wrk, at 1,000 and at 100,000 orders.

    .venv/bin/python benchmarks/web.py [--sizes 1000,100000] [--duration 10] [--connections 32] [--lighthouse]

What it does, all on this machine:

1. starts Anvil (LocalNode) and, for each size, deploys a registry and registers that many copies of the
   reference order (../shared/reference-order.json) differing only in ``order_number``, with
   ``register_many`` in batches of 400;
2. for each registry starts the page as users run it — ``peru-compras serve`` in its own process (uvicorn
   with uvloop and httptools, one process) — and warms it on a sample of 1,000 orders spread over the whole
   registry (the first view of an order reads it from the chain; later ones are served from memory);
3. runs ``wrk -t2 -c32 -d10s --latency`` with a Lua script that walks those 1,000 orders' URLs in turn,
   for the order pages (``/o/<entity>/<number>``) and for the API (``/api/orders/<token id>``), three
   times each, the sizes interleaved (1,000, 100,000, 1,000, …) so that other work on a shared machine
   weighs on both alike; the median run is kept;
   The server's own CPU time per request is recorded too (from /proc): unlike requests/s it does not
   depend on what else the machine is doing, and 1e6 / it is what one core can serve;
4. weighs one order page as a phone loads it (HTML + app.js + favicon; plain and gzip);
5. with ``--lighthouse``, runs Lighthouse 12 (mobile, simulated throttling) on an order page.

Goals: >= 5,000 requests/s with p99 <= 25 ms for both, within 20% between the two sizes; page weight
<= 100 KB; Lighthouse mobile performance and accessibility >= 95. Writes benchmarks/results/web.json.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from eth_account import Account  # noqa: E402

from peru_compras.chain.client import Registry  # noqa: E402
from peru_compras.chain.networks import network  # noqa: E402
from peru_compras.chain.node import LocalNode, free_port  # noqa: E402
from peru_compras.chain.rpc import Rpc  # noqa: E402
from peru_compras.chain.transactions import Transactor  # noqa: E402
from peru_compras.hashing import sha256  # noqa: E402
from peru_compras.order import Order, parse_order  # noqa: E402

REFERENCE = ROOT.parent / "shared" / "reference-order.json"
SAMPLE = ROOT / "peru_compras" / "samples" / "01-hospital-piura.json"
BATCH = 400
SAMPLED = 1_000
GOAL_RPS = 5_000.0
GOAL_P99_MS = 25.0
GOAL_SPREAD = 0.20
GOAL_WEIGHT = 100 * 1024
GOAL_LIGHTHOUSE = 95
SERVER_CPU, WRK_CPU = 0, 1
LIGHTHOUSE = "lighthouse@12.8.2"

LUA = """
local paths = {}
for line in io.lines(os.getenv("PATHS_FILE")) do paths[#paths + 1] = line end
local i = math.random(#paths)
request = function()
  i = i % #paths + 1
  return wrk.format("GET", paths[i])
end
"""


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def reference() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((REFERENCE if REFERENCE.exists() else SAMPLE).read_text(encoding="utf-8"))
    return data


def order_number(index: int) -> str:
    return f"OC-2026-{index:07d}"


def make_orders(start: int, stop: int, record: dict[str, Any]) -> list[tuple[Order, bytes]]:
    out = []
    for index in range(start, stop):
        order = parse_order({**record, "order_number": order_number(index)})
        out.append((order, sha256(b"pdf " + order.order_number.encode())))
    return out


def register_up_to(registry: Registry, have: int, want: int, record: dict[str, Any]) -> float:
    started = time.perf_counter()
    for start in range(have, want, BATCH):
        registry.register_many(make_orders(start, min(start + BATCH, want), record))
        done = min(start + BATCH, want)
        if done % 10_000 == 0 or done == want:
            say(f"  registered {done:,} orders ({time.perf_counter() - started:.0f} s)")
    return time.perf_counter() - started


def wait_http(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - loopback
                response.read()
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def fetch(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes, dict[str, str]]:
    request = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - loopback
        return response.status, response.read(), {k.lower(): v for k, v in response.headers.items()}


def parse_wrk(output: str) -> dict[str, Any]:
    def ms(text: str) -> float:
        value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    latency = {p: ms(v) for p, v in re.findall(r"^\s+(50|75|90|99)%\s+(\S+)", output, re.M)}
    total = int(re.search(r"(\d+) requests in", output).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors = re.search(r"Socket errors: (.*)", output)
    return {"requests_per_s": rps, "p50_ms": latency.get("50"), "p90_ms": latency.get("90"),
            "p99_ms": latency.get("99"), "requests": total, "non_2xx": int(bad.group(1)) if bad else 0,
            "socket_errors": errors.group(1).strip() if errors else None}


def run_wrk(base: str, paths: list[str], folder: Path, *, duration: int, connections: int) -> dict[str, Any]:
    paths_file = folder / "paths.txt"
    paths_file.write_text("\n".join(paths) + "\n")
    script = folder / "rotate.lua"
    script.write_text(LUA)
    command = [*pin(WRK_CPU), "wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--latency", "-s", str(script),
               base]
    output = subprocess.run(command, capture_output=True, text=True, check=True,
                            env={**os.environ, "PATHS_FILE": str(paths_file)}).stdout
    result = parse_wrk(output)
    result["command"] = " ".join(command[:-2] + ["rotate.lua", "http://127.0.0.1:PORT"])
    result["pinned"] = bool(pin(WRK_CPU))
    return result


def pin(cpu: int) -> list[str]:
    """``taskset -c CPU`` when the machine has two CPUs or more: the server gets one core and wrk the other,
    so the figures do not depend on how the scheduler happens to mix them (runs vary by a third without)."""
    if shutil.which("taskset") and (os.cpu_count() or 1) >= 2:
        return ["taskset", "-c", str(cpu)]
    return []


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used (from /proc: unaffected by other work on the machine)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_server(node: LocalNode, registry: Registry, home: Path, port: int) -> subprocess.Popen[bytes]:
    base = f"http://127.0.0.1:{port}"
    command = [*pin(SERVER_CPU), str(ROOT / ".venv" / "bin" / "peru-compras"), "--home", str(home), "--rpc", node.url,
               "--registry", registry.address, "--base-url", base, "serve", "--host", "127.0.0.1",
               "--port", str(port)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PERU_COMPRAS_")}
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
                               start_new_session=True)
    wait_http(base + "/healthz")
    return process


def stop_server(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def page_weight(base: str, path: str) -> dict[str, int]:
    _, html, _ = fetch(base + path)
    _, html_gz, headers = fetch(base + path, {"Accept-Encoding": "gzip"})
    assert headers.get("content-encoding") == "gzip"
    assets = re.findall(rb'(?:src|href)="(/static/[^"]+)"', html)
    asset_bytes = [fetch(base + asset.decode().replace("&amp;", "&"))[1] for asset in assets]
    plain = len(html) + sum(len(body) for body in asset_bytes)
    compressed = len(html_gz) + sum(len(gzip.compress(body)) for body in asset_bytes)
    return {"html_bytes": len(html), "html_gzip_bytes": len(html_gz), "assets": len(assets),
            "total_bytes": plain, "total_gzip_bytes": compressed}


def lighthouse(url: str, folder: Path) -> dict[str, Any]:
    """Lighthouse 12 (Node 20 here; 13 needs 22) with Debian's Chromium, mobile (its default), simulated
    throttling. Needs npx and either network access to npm or lighthouse in npm's cache."""
    out = folder / "lighthouse.json"
    command = ["npx", "--yes", LIGHTHOUSE, url, "--chrome-flags=--headless --no-sandbox",
               "--only-categories=performance,accessibility,best-practices", "--output=json",
               f"--output-path={out}", "--quiet"]
    subprocess.run(command, check=True, env={**os.environ, "CHROME_PATH": shutil.which("chromium") or
                                             "/usr/bin/chromium"}, capture_output=True, timeout=300)
    report = json.loads(out.read_text())
    audits = report["audits"]
    return {
        "command": f"CHROME_PATH=/usr/bin/chromium npx --yes {LIGHTHOUSE} <order page URL> "
                   "--chrome-flags='--headless --no-sandbox' "
                   "--only-categories=performance,accessibility,best-practices",
        "form_factor": report["configSettings"]["formFactor"],
        "throttling": report["configSettings"]["throttlingMethod"],
        "scores": {name: round(category["score"] * 100) for name, category in report["categories"].items()},
        "metrics": {name: audits[name]["displayValue"] for name in (
            "first-contentful-paint", "largest-contentful-paint", "total-blocking-time",
            "cumulative-layout-shift", "speed-index", "total-byte-weight")},
    }


@dataclass
class Target:
    """One registry of `size` orders and the page server in front of it."""

    size: int
    registry: Registry
    registration_s: float
    base: str = ""
    server: subprocess.Popen[bytes] | None = None
    paths: dict[str, list[str]] = field(default_factory=dict)
    runs: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    first_view_ms: float = 0.0

    def start(self, node: LocalNode, folder: Path) -> None:
        port = free_port()
        self.base = f"http://127.0.0.1:{port}"
        step = max(1, self.size // SAMPLED)
        record = reference()
        orders = [parse_order({**record, "order_number": order_number(i)})
                  for i in range(0, self.size, step)][:SAMPLED]
        self.paths = {"order_page": [order.verify_path for order in orders],
                      "api": [f"/api/orders/0x{order.token_id:064x}" for order in orders]}
        self.server = start_server(node, self.registry, folder / f"home-{self.size}", port)
        started = time.perf_counter()
        for path in self.paths["order_page"]:  # first views: each order read from the chain once
            status, _, _ = fetch(self.base + path)
            assert status == 200, path
        self.first_view_ms = (time.perf_counter() - started) / len(orders) * 1000

    def result(self, name: str) -> dict[str, Any]:
        runs = sorted(self.runs[name], key=lambda run: run["requests_per_s"])
        return {**runs[len(runs) // 2], "runs_requests_per_s": [run["requests_per_s"] for run in self.runs[name]],
                "runs_p99_ms": [run["p99_ms"] for run in self.runs[name]],
                "runs_server_cpu_us_per_request": [run["server_cpu_us_per_request"] for run in self.runs[name]]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,100000")
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3, help="wrk runs per figure; the median is kept")
    parser.add_argument("--lighthouse", action="store_true", help=f"also run {LIGHTHOUSE} (npx) on an order page")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "web.json")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed: apt-get install -y wrk (scripts/bootstrap --test)")
    sizes = sorted(int(size) for size in args.sizes.split(","))
    record = reference()
    load_before = os.getloadavg()
    if load_before[0] > 0.5:
        say(f"warning: load average {load_before[0]:.2f} before starting — other work on this machine will "
            "lower the figures")
    results: list[dict[str, Any]] = []
    extra: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp, LocalNode(extra_args=["--gas-limit", "100000000"]) as node:
        folder = Path(tmp)
        rpc = Rpc(node.url)
        account = Account.create()
        rpc.call("anvil_setBalance", [account.address, hex(10**24)])
        transactor = Transactor(rpc, account, network("local"))
        targets = []
        for size in sizes:
            registry, _ = Registry.deploy(transactor, document_base_uri="http://127.0.0.1/d/")
            say(f"registering {size:,} orders in registry {registry.address}")
            targets.append(Target(size, registry, register_up_to(registry, 0, size, record)))
        try:
            for target in targets:
                target.start(node, folder)
            # Interleaved: size A, size B, size A, ... so that other work on the machine hits both alike.
            for name in ("order_page", "api"):
                for target in targets:
                    run_wrk(target.base, target.paths[name], folder, duration=2, connections=args.connections)
                for _ in range(args.repeats):
                    for target in targets:
                        assert target.server is not None
                        cpu = cpu_seconds(target.server.pid)
                        run = run_wrk(target.base, target.paths[name], folder, duration=args.duration,
                                      connections=args.connections)
                        used = cpu_seconds(target.server.pid) - cpu
                        run["server_cpu_us_per_request"] = round(used / max(run["requests"], 1) * 1e6, 1)
                        target.runs.setdefault(name, []).append(run)
                        say(f"  {target.size:>7,} orders {name:<10} {run['requests_per_s']:>9,.0f} req/s  "
                            f"p50 {run['p50_ms']:.2f} ms  p99 {run['p99_ms']:.2f} ms  non-2xx {run['non_2xx']}  "
                            f"server CPU {run['server_cpu_us_per_request']} us/request")
            first = targets[0]
            sampled = first.paths["order_page"][0]
            extra["page_weight"] = page_weight(first.base, sampled)
            if args.lighthouse:
                extra["lighthouse"] = lighthouse(first.base + sampled, folder)
                say(f"  lighthouse {extra['lighthouse']['scores']}")
        finally:
            for target in targets:
                if target.server is not None:
                    stop_server(target.server)
        for target in targets:
            results.append({"orders": target.size, "sampled_orders": len(target.paths["order_page"]),
                            "registration_s": round(target.registration_s, 1),
                            "first_view_ms_mean": round(target.first_view_ms, 2),
                            "order_page": target.result("order_page"), "api": target.result("api")})
    low, high = results[0], results[-1]
    summary: dict[str, Any] = {}
    for name in ("order_page", "api"):
        spread = abs(high[name]["requests_per_s"] - low[name]["requests_per_s"]) / low[name]["requests_per_s"]
        summary[name] = {
            "requests_per_s": [r[name]["requests_per_s"] for r in results],
            "p99_ms": [r[name]["p99_ms"] for r in results],
            "spread": round(spread, 3),
            "meets_goal": all(r[name]["requests_per_s"] >= GOAL_RPS and r[name]["p99_ms"] <= GOAL_P99_MS
                              and r[name]["non_2xx"] == 0 for r in results) and spread <= GOAL_SPREAD,
        }
    weight = extra["page_weight"]["total_bytes"]
    summary["page_weight_bytes"] = weight
    summary["page_weight_meets_goal"] = weight <= GOAL_WEIGHT
    if "lighthouse" in extra:
        scores = extra["lighthouse"]["scores"]
        summary["lighthouse"] = scores
        summary["lighthouse_meets_goal"] = scores["performance"] >= GOAL_LIGHTHOUSE and \
            scores["accessibility"] >= GOAL_LIGHTHOUSE
    out = {
        "benchmark": "web",
        "goal": {"requests_per_s": GOAL_RPS, "p99_ms": GOAL_P99_MS, "spread": GOAL_SPREAD,
                 "page_weight_bytes": GOAL_WEIGHT, "lighthouse_mobile_performance_and_accessibility": GOAL_LIGHTHOUSE},
        "server": "peru-compras serve (uvicorn 1 process, uvloop + httptools, access log off)",
        "load": f"wrk -t2 -c{args.connections} -d{args.duration}s --latency, rotating over "
                f"{SAMPLED:,} orders' URLs spread over the registry; median of {args.repeats} runs",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
                    "load_average_before": [round(x, 2) for x in load_before],
                    "load_average_after": [round(x, 2) for x in os.getloadavg()]},
        "results": results,
        **extra,
        "summary": summary,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    say(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
