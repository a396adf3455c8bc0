"""Gas per order through LACNet's open-standards model (the emulated PermissionedMetaTxHub on Anvil, Berlin,
chain id 648540), beside the plain figures on the same node: the relayer's whole transaction, and the
registry's share of it (the hub's call into the registry, from Anvil's call tracer).

    PYTHONPATH=. .venv/bin/python benchmarks/gas_metatx.py   # prints a table, writes benchmarks/results/gas_metatx.json

The hub's own work (EIP-712 hash, ecrecover, a fresh storage slot for the unordered nonce, the execute
calldata carrying the Forward and signature) is emulated: LACNet's hub source is not published, so its real
overhead may differ. The registry's share does not depend on the hub.
"""

from __future__ import annotations

import copy
import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from eth_account import Account

from peru_compras.chain.client import Registry
from peru_compras.chain.metatx import MetaTxTransactor
from peru_compras.chain.networks import Network, network
from peru_compras.chain.rpc import Rpc
from peru_compras.chain.transactions import Transactor
from peru_compras.hashing import sha256
from peru_compras.order import parse_order
from tests.lacnet.metatx import MetaTxEmulator

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT.parent / "shared" / "reference-order.json"
if not REFERENCE.exists():
    REFERENCE = ROOT / "peru_compras" / "samples" / "01-hospital-piura.json"
RESULTS = ROOT / "benchmarks" / "results" / "gas_metatx.json"


def copy_with(number: str) -> dict[str, object]:
    record: dict[str, object] = copy.deepcopy(json.loads(REFERENCE.read_text()))
    record["order_number"] = number
    return record


def registry_share(rpc: Rpc, tx_hash: str, registry: str) -> int:
    """Gas of the hub's call into the registry inside the relayer's transaction."""
    trace: dict[str, Any] = rpc.call("debug_traceTransaction", [tx_hash, {"tracer": "callTracer"}])
    stack = [trace]
    while stack:
        frame = stack.pop()
        if str(frame.get("to", "")).lower() == registry.lower() and frame is not trace:
            return int(frame["gasUsed"], 16)
        stack.extend(frame.get("calls") or [])
    raise RuntimeError(f"no call into the registry in {tx_hash}")


def measure(rpc: Rpc, transactor: Transactor, tag: str) -> dict[str, Any]:
    registry, deployment = Registry.deploy(transactor, document_base_uri="https://oc.example.pe/d/")
    reference = parse_order(json.loads(REFERENCE.read_text()))
    singles = [registry.register(reference, sha256(tag.encode() + b"reference"))]
    singles += [registry.register(parse_order(copy_with(f"OC-2026-{n:06d}")), sha256(b"%s%d" % (tag.encode(), n)))
                for n in range(1, 6)]
    batch = registry.register_many([(parse_order(copy_with(f"OC-2026-{n:06d}")), sha256(b"%sb%d" % (tag.encode(), n)))
                                    for n in range(100, 200)])
    tx_gas = int(rpc.call("eth_getTransactionReceipt", [batch[0].tx_hash])["gasUsed"], 16)
    out: dict[str, Any] = {"deploy": deployment.gas_used, "single": max(r.gas_used for r in singles),
                           "batch_100_per_order": tx_gas // 100}
    if isinstance(transactor, MetaTxTransactor):
        out["single_registry_share"] = max(registry_share(rpc, r.tx_hash, registry.address) for r in singles)
        out["batch_100_registry_share_per_order"] = registry_share(rpc, batch[0].tx_hash, registry.address) // 100
    return out


def main() -> int:
    with MetaTxEmulator() as emu:
        rpc = Rpc(emu.url)
        plain_profile = Network("lacnet-plain", "legacy", 648540)  # the same node, a direct transaction
        plain = measure(rpc, Transactor(rpc, Account.create(), plain_profile), "plain")
        metatx_profile = replace(network("lacnet-protestnet"), metatx_hub=emu.hub)
        metatx = measure(rpc, MetaTxTransactor(rpc, Account.create(), emu.new_relayer(), metatx_profile), "metatx")
    results = {"plain": plain, "metatx": metatx, "goals": {"single": 60_000, "batch_100": 35_000},
               "note": "metatx gas is the relayer's transaction to the emulated hub; registry_share is the hub's "
                       "call into the registry (Anvil callTracer)"}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"{'':34}{'plain':>10}{'metatx':>10}")
    for key in ("deploy", "single", "batch_100_per_order"):
        print(f"{key:34}{plain[key]:>10,}{metatx[key]:>10,}")
    print(f"{'single: registry share':34}{'':>10}{metatx['single_registry_share']:>10,}")
    print(f"{'batch of 100: registry share/order':34}{'':>10}{metatx['batch_100_registry_share_per_order']:>10,}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
