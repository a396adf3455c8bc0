"""Audit throughput: N registered orders whose documents a local HTTP server publishes (another process,
HTTP/1.1 keep-alive), checked by `audit()` beside the naive way (verify --fetch's check, one document after
another, a new connection each).

    .venv/bin/python benchmarks/audit.py [--orders 10000] [--kb 20] [--naive 300]

Setup (not timed): a registry on Anvil whose document base URI is the server's /d/, N orders registered with
registerBatch (benchmarks/mirror.py's fast path), the mirror built. Timed: `audit()` over every order
(16 workers, 16 at a time on the one host, no rate limit: the server is ours), in this process; then the naive
loop over `--naive` documents, extrapolated. Writes benchmarks/results/audit.json with the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from eth_account import Account

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mirror import records, register_fast, save  # noqa: E402 — benchmarks/mirror.py, the fast registration

from peru_compras.audit import AuditSettings, audit  # noqa: E402
from peru_compras.chain.client import Registry  # noqa: E402
from peru_compras.chain.networks import network  # noqa: E402
from peru_compras.chain.node import LocalNode, free_port, set_balance  # noqa: E402
from peru_compras.chain.rpc import Rpc  # noqa: E402
from peru_compras.chain.transactions import Transactor  # noqa: E402
from peru_compras.fetch import FetchPolicy, check_published  # noqa: E402
from peru_compras.hashing import hashlink, sha256  # noqa: E402
from peru_compras.mirror import mirror  # noqa: E402


def document(number: str, kb: int) -> bytes:
    head = f"%PDF-1.4\n% orden {number}\n".encode()
    return head + b"0" * (kb * 1024 - len(head))


def serve(port: int, numbers: list[str], kb: int) -> None:
    """The document server (run in its own process): /d/<hashlink> for every order."""
    paths = {}
    for number in numbers:
        body = document(number, kb)
        paths["/d/" + hashlink(sha256(body))] = body

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body are separate writes: no 40 ms delayed-ACK stall

        def do_GET(self) -> None:  # noqa: N802 — http.server's name
            body = paths.get(self.path)
            self.send_response(200 if body else 404)
            self.send_header("Content-Type", "application/pdf")
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    print("ready", flush=True)
    server.serve_forever()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--orders", type=int, default=10_000)
    parser.add_argument("--kb", type=int, default=20)
    parser.add_argument("--naive", type=int, default=300)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--numbers", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, json.loads(args.numbers.read_text()), args.kb)
        return 0
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as folder, LocalNode(extra_args=["--gas-limit", "100000000"]) as node:
        rows = records(args.orders, "AU", 7)
        numbers = Path(folder) / "numbers.json"
        numbers.write_text(json.dumps([row["order_number"] for row in rows]))
        port = free_port()
        server = subprocess.Popen([sys.executable, __file__, "--serve", str(port), "--numbers", str(numbers),
                                   "--kb", str(args.kb)], stdout=subprocess.PIPE, text=True)
        try:
            assert server.stdout is not None and server.stdout.readline().strip() == "ready"
            base = f"http://127.0.0.1:{port}"
            rpc = Rpc(node.url, timeout=120)
            account = Account.create()
            set_balance(rpc, account.address, 10**24)
            registry, _ = Registry.deploy(Transactor(rpc, account, network("local")), document_base_uri=base + "/d/")
            register_fast(rpc, registry, account, rows, digest=lambda r: sha256(document(r["order_number"], args.kb)))
            out = Path(folder) / "registro.sqlite"
            mirror(Registry(rpc, registry.address), out)
            policy = FetchPolicy(base)  # verify --fetch's rules; the base URL's own origin may be local
            cpu, started = time.process_time(), time.perf_counter()
            summary = audit(out, policy, settings=AuditSettings(workers=16, per_host=16, rate=0))
            seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu
            assert summary.totals.get("original") == args.orders, summary
            sample = [(base + "/d/" + hashlink(sha256(document(r["order_number"], args.kb))),
                       sha256(document(r["order_number"], args.kb))) for r in rows[: args.naive]]
            started = time.perf_counter()
            for url, digest in sample:
                assert check_published(url, digest, policy).outcome == "original"
            naive = (time.perf_counter() - started) / len(sample)
        finally:
            server.terminate()
            server.wait(timeout=20)
    results = {
        "documents": args.orders, "document_kb": args.kb,
        "audit": {"seconds": round(seconds, 2), "cpu_seconds": round(cpu_seconds, 2),
                  "documents_per_s": round(args.orders / seconds), "workers": 16, "per_host": 16,
                  "goal_documents_per_s": 500},
        "naive_one_check_after_another": {"ms_per_document": round(naive * 1000, 2), "sample": len(sample),
                                          "documents_per_s": round(1 / naive),
                                          "extrapolated_seconds_for_all": round(naive * args.orders, 1)},
        "audit_vs_naive_speedup": round(naive * args.orders / seconds, 1),
    }
    save("audit", results, load_before, full=args.orders == 10_000, orders=args.orders)
    return 0


if __name__ == "__main__":
    sys.exit(main())
