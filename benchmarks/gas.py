"""Gas per order with the reference record, beside the anchors from the issue, on the plain path (Anvil)
and through LACNet's gas model (the relay emulator, tests/lacnet/emulator.py): there the writer node's hub
transaction pays the hub's work besides the registry's, and the node's per-block allowance is charged with
the gas the relay asks (len(data) x 105 + 300,000 + the user's gas limit).

    .venv/bin/python benchmarks/gas.py      # prints a table, writes benchmarks/results/gas.json
"""

from __future__ import annotations

import copy
import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from eth_account import Account

from peru_compras.chain import lacnet
from peru_compras.chain.client import Registration, Registry
from peru_compras.chain.networks import network
from peru_compras.chain.node import LocalNode
from peru_compras.chain.rpc import Rpc
from peru_compras.chain.transactions import Transactor
from peru_compras.hashing import sha256
from peru_compras.order import parse_order

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the relay emulator lives in tests/lacnet/
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


def _relayed(emu: Any, registry: Registry, registration: Registration) -> dict[str, int]:
    """One relayed transaction's gas: what the node's hub transaction used and asked for (the allowance it is
    charged against), the user's gas limit inside it, and the registry's own call (from the node's trace)."""
    rpc = registry.rpc
    tx = rpc.call("eth_getTransactionByHash", [registration.tx_hash])
    signing = lacnet.hub_signing_data(bytes.fromhex(tx["input"][2:]))
    assert signing is not None
    trace = emu.anvil.call("debug_traceTransaction", [registration.tx_hash, {"tracer": "callTracer"}])
    inner = next(c for c in trace["calls"] if c["to"].lower() == registry.address.lower() and c["type"] == "CALL")
    receipt = rpc.call("eth_getTransactionReceipt", [registration.tx_hash])
    return {"orders": registration.tx_orders, "hub_tx_gas_used": int(receipt["gasUsed"], 16),
            "hub_tx_gas_limit": int(tx["gas"], 16), "user_gas_limit": lacnet.original_transaction(signing).gas,
            "registry_gas_used": int(inner["gasUsed"], 16)}


def relay_model() -> dict[str, Any]:
    """register and registerBatch(100) through the emulated writer node, relay and hub."""
    from tests.lacnet.emulator import LacnetEmulator

    with LacnetEmulator() as emu:
        account = Account.create()
        profile = replace(network("lacnet-protestnet"), trusted_forwarder=emu.forwarder)
        transactor = Transactor(Rpc(emu.url), account, profile, node_address=emu.node_address)
        registry, deployment = Registry.deploy(transactor, document_base_uri="https://oc.example.pe/d/")
        single = registry.register(parse_order(copy_with("OC-2026-900001")), sha256(b"relay single"))
        batch = registry.register_many(
            [(parse_order(copy_with(f"OC-2026-{n:06d}")), sha256(b"relay b%d" % n)) for n in range(900100, 900200)])
        one, hundred = _relayed(emu, registry, single), _relayed(emu, registry, batch[0])
    per_order = {key: value // hundred["orders"] for key, value in hundred.items() if key != "orders"}
    return {"deploy_hub_tx_gas_used": deployment.gas_used, "single": one, "batch_100": hundred,
            "batch_100_per_order": per_order}


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
    relay = relay_model()
    results = {
        "record_canonical_bytes": len(reference.canonical_bytes()),
        "record_on_chain_bytes": len(reference.encode_entry(b"\0" * 32)),
        "deploy": deployment.gas_used,
        "single": max([first, *singles]),
        "batch_100_per_order": batch[0].gas_used,
        "goals": GOALS,
        "anchors": ANCHORS,
        "lacnet_relay": relay,
    }
    out = ROOT / "benchmarks" / "results" / "gas.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    rows = [("peru-compras register (single)", results["single"], GOALS["single"]),
            ("peru-compras registerBatch (100), per order", results["batch_100_per_order"], GOALS["batch_100"])]
    rows += [(name, gas, None) for name, gas in ANCHORS.items()]
    print(f"{'':52} {'gas/order':>10} {'goal':>8}")
    for name, gas, goal in rows:
        print(f"{name:52} {gas:>10,} {goal or '':>8}")
    print("through LACNet's gas model (relay emulator), per order:")
    print(f"{'':52} {'hub tx':>10} {'registry':>10} {'node asks':>10} {'user asks':>10}")
    for name, row in (("register (single)", relay["single"]), ("registerBatch (100)", relay["batch_100_per_order"])):
        print(f"{name:52} {row['hub_tx_gas_used']:>10,} {row['registry_gas_used']:>10,} "
              f"{row['hub_tx_gas_limit']:>10,} {row['user_gas_limit']:>10,}")
    print(f"record: {results['record_canonical_bytes']} bytes canonical JSON, "
          f"{results['record_on_chain_bytes']} bytes on chain; wrote {out.relative_to(ROOT)}")
    return 0 if results["single"] <= GOALS["single"] and results["batch_100_per_order"] <= GOALS["batch_100"] else 1


if __name__ == "__main__":
    sys.exit(main())
