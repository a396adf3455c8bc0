"""Mirror throughput on a local Anvil: a full mirror of N registered orders, an incremental run after M more,
the Datasette canned queries over the result, beside the naive way (one `show` per token).

    .venv/bin/python benchmarks/mirror.py [--orders 100000] [--more 1000] [--naive 300]

Setup (not timed): a registry with N orders registered by registerBatch transactions of 500 (signed here with
a fixed gas limit and sent without waiting, Anvil mines one per block), 300 entities, 3,000 suppliers,
issue dates over 23 months, 1 % of the orders annulled. Timed: `mirror()` in this process (the CLI adds only
its start-up), each canned query of peru_compras/data/datasette-metadata.json run by SQLite (median of 15)
and through Datasette's JSON API (median of 15 requests), and `Registry.read` (what `show` does) for
`--naive` tokens, extrapolated to N; `show` itself, the command, for 10 tokens. Writes
benchmarks/results/mirror.json. The machine is shared: the load average is recorded before and after.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from eth_abi.abi import encode as abi_encode
from eth_account import Account

from peru_compras.chain.client import Registry
from peru_compras.chain.contract import selector
from peru_compras.chain.networks import network
from peru_compras.chain.node import LocalNode, free_port, set_balance
from peru_compras.chain.rpc import Rpc
from peru_compras.chain.transactions import Transactor
from peru_compras.hashing import sha256
from peru_compras.mirror import mirror
from peru_compras.order import parse_order

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = json.loads((ROOT / "peru_compras" / "samples" / "01-hospital-piura.json").read_text())
METADATA = ROOT / "peru_compras" / "data" / "datasette-metadata.json"
PER_TX = 500
_WEIGHTS = (5, 4, 3, 2, 7, 6, 5, 4, 3, 2)


def ruc(prefix: str, number: int) -> str:
    body = f"{prefix}{number:08d}"
    check = 11 - sum(int(d) * w for d, w in zip(body, _WEIGHTS, strict=True)) % 11
    return body + str(check % 10)


def records(count: int, tag: str, seed: int) -> list[dict[str, Any]]:
    chance = random.Random(seed)
    out = []
    for index in range(count):
        record = copy.deepcopy(REFERENCE)
        entity = chance.randrange(300)
        record["order_number"] = f"OC-{tag}-{index:07d}"
        record["entity"] = {"name": f"Entidad Pública N.º {entity}", "ruc": ruc("20", 10_000 + entity)}
        record["buyer"] = {"name": "Oficina de Abastecimiento", "ruc": record["entity"]["ruc"]}
        supplier = chance.randrange(3000)
        record["supplier"] = {"name": f"Proveedor {supplier} S.A.C.", "ruc": ruc("20", 50_000 + supplier)}
        month = chance.randrange(23)
        record["issued_on"] = f"{2025 + month // 12}-{month % 12 + 1:02d}-{chance.randrange(1, 29):02d}"
        out.append(record)
    return out


def register_fast(rpc: Rpc, registry: Registry, account: Any, rows: list[dict[str, Any]],
                  digest: Any = lambda record: sha256(record["order_number"].encode())) -> None:
    """registerBatch transactions of PER_TX orders, signed here, sent without waiting; then the last receipt.
    `digest(record)`: the document hash registered for it."""
    nonce = int(rpc.call("eth_getTransactionCount", [account.address, "pending"]), 16)
    chain_id = int(rpc.call("eth_chainId"), 16)
    hashes = []
    for start in range(0, len(rows), PER_TX):
        entries = [parse_order(r).encode_entry(digest(r)) for r in rows[start:start + PER_TX]]
        data = Registry.batch_calldata(entries)
        signed = account.sign_transaction({"to": registry.address, "data": data, "gas": 45_000 * len(entries) + 100_000,
                                           "gasPrice": 2 * 10**9, "nonce": nonce, "chainId": chain_id, "value": 0})
        hashes.append(rpc.call("eth_sendRawTransaction", ["0x" + bytes(signed.raw_transaction).hex()]))
        nonce += 1
    for tx in hashes[-1:]:
        while rpc.call("eth_getTransactionReceipt", [tx]) is None:
            time.sleep(0.05)
    for tx in hashes:
        receipt = rpc.call("eth_getTransactionReceipt", [tx])
        assert receipt and receipt["status"] == "0x1", f"batch {tx} failed"


def annul_fast(rpc: Rpc, registry: Registry, account: Any, tokens: list[int]) -> None:
    """annul(token, reason) transactions signed here and sent without waiting; then every receipt."""
    nonce = int(rpc.call("eth_getTransactionCount", [account.address, "pending"]), 16)
    chain_id = int(rpc.call("eth_chainId"), 16)
    hashes = []
    for token in tokens:
        data = selector("annul(uint256,string)") + abi_encode(["uint256", "string"], [token, "Anulada (medición)"])
        signed = account.sign_transaction({"to": registry.address, "data": data, "gas": 120_000, "gasPrice": 2 * 10**9,
                                           "nonce": nonce, "chainId": chain_id, "value": 0})
        hashes.append(rpc.call("eth_sendRawTransaction", ["0x" + bytes(signed.raw_transaction).hex()]))
        nonce += 1
    for tx in hashes:
        while (receipt := rpc.call("eth_getTransactionReceipt", [tx])) is None:
            time.sleep(0.05)
        assert receipt["status"] == "0x1", f"annul {tx} failed"


def median_ms(run: Any, times: int = 15) -> float:
    samples = []
    for _ in range(times):
        started = time.perf_counter()
        run()
        samples.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(samples), 2)


def canned_queries(path: Path) -> dict[str, Any]:
    queries = json.loads(METADATA.read_text())["databases"]["registro"]["queries"]
    with sqlite3.connect(path) as db:
        ruc_param = db.execute("SELECT identifier FROM parties WHERE id IN (SELECT supplier_id FROM orders) "
                               "LIMIT 1").fetchone()[0]
        sqlite_ms = {name: median_ms(lambda q=query: db.execute(q["sql"], {"ruc": ruc_param}).fetchall())
                     for name, query in queries.items()}
    port = free_port()
    server = subprocess.Popen([str(ROOT / ".venv" / "bin" / "datasette"), "serve", str(path), "-m", str(METADATA),
                               "--host", "127.0.0.1", "--port", str(port), "--setting", "sql_time_limit_ms", "5000"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}/{path.stem}"
    try:
        for _ in range(300):
            try:
                httpx.get(f"http://127.0.0.1:{port}/-/versions.json", timeout=2)
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        with httpx.Client(timeout=30) as client:
            def fetch(name: str) -> None:
                answer = client.get(f"{base}/{name}.json", params={"ruc": ruc_param, "_shape": "array"})
                assert answer.status_code == 200, answer.text[:300]

            datasette_ms = {name: median_ms(lambda n=name: fetch(n)) for name in queries}
    finally:
        server.terminate()
        server.wait(timeout=20)
    return {"sqlite_median_ms": sqlite_ms, "datasette_json_median_ms": datasette_ms,
            "slowest_sqlite_ms": max(sqlite_ms.values()), "slowest_datasette_ms": max(datasette_ms.values())}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--more", type=int, default=1_000)
    parser.add_argument("--naive", type=int, default=300)
    args = parser.parse_args()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as folder, LocalNode(extra_args=["--gas-limit", "100000000"]) as node:
        rpc = Rpc(node.url, timeout=120)
        account = Account.create()
        set_balance(rpc, account.address, 10**24)
        registry, _ = Registry.deploy(Transactor(rpc, account, network("local")),
                                      document_base_uri="https://oc.example.pe/d/")
        started = time.perf_counter()
        rows = records(args.orders, "B", 1)
        register_fast(rpc, registry, account, rows)
        chance = random.Random(2)
        annul_fast(rpc, registry, account, [parse_order(r).token_id for r in chance.sample(rows, args.orders // 100)])
        setup_s = time.perf_counter() - started
        out = Path(folder) / "registro.sqlite"
        reading = Registry(Rpc(node.url, timeout=120), registry.address)

        cpu, started = time.process_time(), time.perf_counter()
        full = mirror(reading, out)
        full_s, full_cpu = time.perf_counter() - started, time.process_time() - cpu
        assert full.orders == args.orders, full

        register_fast(rpc, registry, account, records(args.more, "N", 3))
        started = time.perf_counter()
        more = mirror(reading, out)
        more_s = time.perf_counter() - started
        assert more.added == args.more, more

        queries = canned_queries(out)
        sample = [parse_order(r).token_id for r in chance.sample(rows, args.naive)]
        started = time.perf_counter()
        for token in sample:
            reading.read(token)
        per_read = (time.perf_counter() - started) / len(sample)
        env = {k: v for k, v in os.environ.items() if not k.startswith("PERU_COMPRAS_")}
        env.update(PERU_COMPRAS_RPC=node.url, PERU_COMPRAS_REGISTRY=registry.address,
                   PERU_COMPRAS_BASE_URL="https://oc.example.pe")
        started = time.perf_counter()
        for token in sample[:10]:
            done = subprocess.run([str(ROOT / ".venv" / "bin" / "peru-compras"), "show", f"0x{token:064x}", "--json"],
                                  env=env, cwd=folder, capture_output=True, timeout=120)
            assert done.returncode == 0, done.stderr
        per_show = (time.perf_counter() - started) / 10
        size_mb = round(out.stat().st_size / 1e6, 1)
    naive_s = per_read * args.orders
    results = {
        "orders": args.orders,
        "full_mirror": {"seconds": round(full_s, 2), "cpu_seconds": round(full_cpu, 2),
                        "orders_per_s": round(args.orders / full_s), "file_mb": size_mb,
                        "status_changes": full.status_changes, "goal_seconds": 60},
        "incremental": {"new_orders": args.more, "seconds": round(more_s, 3), "goal_seconds": 3},
        "canned_queries": {**queries, "goal_ms": 50},
        "naive_one_show_per_token": {
            "registry_read_ms_per_token": round(per_read * 1000, 2), "sample_tokens": len(sample),
            "extrapolated_seconds_for_all": round(naive_s), "cli_show_s_per_token": round(per_show, 2),
            "cli_show_extrapolated_hours_for_all": round(per_show * args.orders / 3600, 1)},
        "mirror_vs_naive_speedup": round(naive_s / full_s, 1),
        "setup_seconds_not_timed": round(setup_s, 1),
    }
    save("mirror", results, load_before, full=args.orders == 100_000, orders=args.orders)
    return 0


def save(kind: str, results: dict[str, Any], load_before: tuple[float, float, float], *, full: bool,
         orders: int) -> None:
    """Add the machine's load and the command to `results`, write benchmarks/results/<kind>[-N].json, print it."""
    results.update({
        "cpus": os.cpu_count(), "load_average_1min_before": round(load_before[0], 2),
        "load_average_1min_after": round(os.getloadavg()[0], 2),
        "command": f"cd /work/main && .venv/bin/python benchmarks/{kind}.py " + " ".join(sys.argv[1:]),
    })
    name = f"{kind}.json" if full else f"{kind}-{orders}.json"
    (ROOT / "benchmarks" / "results" / name).write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    sys.exit(main())
