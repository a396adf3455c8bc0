"""Gas per order with the reference record, beside the anchors from the issue.

    .venv/bin/python benchmarks/gas.py      # prints a table, writes benchmarks/results/gas.json
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

from eth_account import Account

from peru_compras.chain.client import Registry
from peru_compras.chain.networks import network
from peru_compras.chain.node import LocalNode
from peru_compras.chain.rpc import Rpc
from peru_compras.chain.transactions import Transactor
from peru_compras.hashing import sha256
from peru_compras.order import parse_order

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT.parent / "shared" / "reference-order.json"
if not REFERENCE.exists():
    REFERENCE = ROOT / "peru_compras" / "samples" / "01-hospital-piura.json"
ANCHORS = {
    "TradeTrust token-registry mint": 291_924,
    "OpenZeppelin ERC721URIStorage": 128_810,
    "ERC-721 + hash + 191-byte metadata event (single)": 89_083,
    "ERC-721 + hash + metadata event (batches)": 55_499,
    "hash-only document store (not an NFT)": 47_899,
}
GOALS = {"single": 60_000, "batch_100": 35_000}


def copy_with(number: str) -> dict[str, object]:
    record: dict[str, object] = copy.deepcopy(json.loads(REFERENCE.read_text()))
    record["order_number"] = number
    return record


def main() -> int:
    with LocalNode() as node:
        rpc = Rpc(node.url)
        account = Account.create()
        rpc.call("anvil_setBalance", [account.address, hex(10**24)])
        transactor = Transactor(rpc, account, network("local"))
        registry, deployment = Registry.deploy(transactor, document_base_uri="https://oc.example.pe/d/")
        reference = parse_order(json.loads(REFERENCE.read_text()))
        first = registry.register(reference, sha256(b"reference")).gas_used
        singles = [registry.register(parse_order(copy_with(f"OC-2026-{n:06d}")), sha256(b"s%d" % n)).gas_used
                   for n in range(1, 6)]
        batch = registry.register_many(
            [(parse_order(copy_with(f"OC-2026-{n:06d}")), sha256(b"b%d" % n)) for n in range(100, 200)])
    results = {
        "record_canonical_bytes": len(reference.canonical_bytes()),
        "record_on_chain_bytes": len(reference.encode_entry(b"\0" * 32)),
        "deploy": deployment.gas_used,
        "single": max([first, *singles]),
        "batch_100_per_order": batch[0].gas_used,
        "goals": GOALS,
        "anchors": ANCHORS,
    }
    out = ROOT / "benchmarks" / "results" / "gas.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    rows = [("peru-compras register (single)", results["single"], GOALS["single"]),
            ("peru-compras registerBatch (100), per order", results["batch_100_per_order"], GOALS["batch_100"])]
    rows += [(name, gas, None) for name, gas in ANCHORS.items()]
    print(f"{'':52} {'gas/order':>10} {'goal':>8}")
    for name, gas, goal in rows:
        print(f"{name:52} {gas:>10,} {goal or '':>8}")
    print(f"record: {results['record_canonical_bytes']} bytes canonical JSON, "
          f"{results['record_on_chain_bytes']} bytes on chain; wrote {out.relative_to(ROOT)}")
    return 0 if results["single"] <= GOALS["single"] and results["batch_100_per_order"] <= GOALS["batch_100"] else 1


if __name__ == "__main__":
    sys.exit(main())
