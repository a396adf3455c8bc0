"""The trust pack (issue 17 item 2): read from the chain alone as of a stated block, and checked field by field
when it is read back from a file."""

from __future__ import annotations

import json
from typing import Any

import pytest
from eth_account.signers.local import LocalAccount

from peru_compras.chain.client import Registry
from peru_compras.chain.rpc import Rpc
from peru_compras.errors import InvalidInput
from peru_compras.order import parse_order
from peru_compras.trust import FORMAT, build_trust_pack, load_trust_pack
from peru_compras.urls import token_hex

from .conftest import funded_account, reference_order


@pytest.fixture(scope="module")
def history(registry: Registry, rpc: Rpc, admin: LocalAccount) -> dict[str, Any]:
    """A registry with a story: two clerks granted, one revoked and granted again, one annulment, one
    supersession."""
    ana, beto = funded_account(rpc), funded_account(rpc)
    out: dict[str, Any] = {"ana": ana.address, "beto": beto.address}
    out["ana_granted"] = registry.grant("registrar", ana.address).block_number
    out["beto_granted"] = registry.grant("registrar", beto.address).block_number
    out["ana_revoked"] = registry.revoke("registrar", ana.address).block_number
    out["ana_again"] = registry.grant("registrar", ana.address).block_number
    out["beto_revoked"] = registry.revoke("registrar", beto.address).block_number
    orders = [parse_order(reference_order(order_number=f"OC-TP-{n}")) for n in range(3)]
    for index, order in enumerate(orders[:2]):
        registry.register(order, bytes([0xB0 + index]) * 32)
    registry.annul(orders[0].token_id, "emitida por error")
    out["last"] = registry.supersede(orders[1].token_id, orders[2], b"\xbe" * 32).block_number
    out["orders"] = orders
    return out


def test_pack_from_the_chain(registry: Registry, rpc: Rpc, admin: LocalAccount, history: dict[str, Any]) -> None:
    pack = build_trust_pack(registry, hosts=["OC.example.pe", "verifica.example.pe:8443"])
    assert pack["format"] == FORMAT and pack["chain_id"] == int(rpc.call("eth_chainId"), 16)
    assert pack["registry"] == registry.address
    assert pack["hosts"] == ["oc.example.pe", "verifica.example.pe:8443"]  # documentBaseURI's first, deduplicated
    block = rpc.call("eth_getBlockByNumber", [hex(pack["block"]), False])
    assert pack["block"] >= history["last"] and pack["block_hash"] == block["hash"]
    assert pack["time"].endswith("Z") and len(pack["time"]) == 20
    periods = {(p["address"], p["from_block"], p["until_block"]) for p in pack["registrars"]}
    assert periods == {
        (admin.address, registry.from_block, None),
        (history["ana"], history["ana_granted"], history["ana_revoked"]),
        (history["ana"], history["ana_again"], None),
        (history["beto"], history["beto_granted"], history["beto_revoked"]),
    }
    first, second, third = history["orders"]
    assert pack["annulled"] == [token_hex(first.token_id)]
    assert pack["superseded"] == {token_hex(second.token_id): token_hex(third.token_id)}
    loaded = load_trust_pack(json.dumps(pack))
    assert loaded.to_json() == pack
    assert loaded.registrar(history["ana"]) == (True, None)
    assert loaded.registrar(history["beto"].lower()) == (False, history["beto_revoked"])
    assert loaded.registrar("0x" + "12" * 20) == (False, None)


def test_pack_as_of_an_earlier_block(registry: Registry, history: dict[str, Any]) -> None:
    """As of the block ana was first revoked: beto still holds the role, nothing annulled yet."""
    pack = build_trust_pack(registry, block=history["ana_revoked"])
    assert pack["block"] == history["ana_revoked"]
    periods = {(p["address"], p["until_block"]) for p in pack["registrars"]}
    assert (history["beto"], None) in periods and (history["ana"], history["ana_revoked"]) in periods
    assert (history["ana"], None) not in periods
    assert pack["annulled"] == [] and pack["superseded"] == {}


def test_a_block_not_yet_mined(registry: Registry, rpc: Rpc) -> None:
    with pytest.raises(InvalidInput, match="not on the chain yet"):
        build_trust_pack(registry, block=int(rpc.call("eth_blockNumber"), 16) + 1000)


GOOD: dict[str, Any] = {
    "format": FORMAT, "chain_id": 31337, "registry": "0x5FbDB2315678afecb367f032d93F642f64180aa3",
    "hosts": ["oc.example.pe"], "block": 12, "block_hash": "0x" + "ab" * 32, "time": "2026-12-01T13:00:00Z",
    "registrars": [{"address": "0x5FbDB2315678afecb367f032d93F642f64180aa3", "from_block": 1, "until_block": None}],
    "annulled": ["0x" + "01" * 32], "superseded": {"0x" + "02" * 32: "0x" + "03" * 32},
}


def test_a_good_pack_loads() -> None:
    assert load_trust_pack(json.dumps(GOOD)).to_json() == GOOD


@pytest.mark.parametrize(("change", "named"), [
    ({"format": "peru-compras-trust-pack/2"}, "format"),
    ({"extra": 1}, "extra"),
    ({"chain_id": -1}, "chain_id"),
    ({"chain_id": True}, "chain_id"),
    ({"registry": "0x5fbdb2315678afecb367f032d93f642f64180aa3"}, "registry"),  # not checksummed
    ({"hosts": ["oc.example.pe/evil"]}, "hosts"),
    ({"hosts": ["h"] * 17}, "hosts"),
    ({"block_hash": "0x" + "AB" * 32}, "block_hash"),
    ({"time": "2026-12-01 13:00:00"}, "time"),
    ({"registrars": [{"address": "0x5FbDB2315678afecb367f032d93F642f64180aa3", "from_block": 5,
                      "until_block": 4}]}, "registrars[0].until_block"),
    ({"registrars": [{"address": "0x5FbDB2315678afecb367f032d93F642f64180aa3", "from_block": 5}]}, "registrars[0]"),
    ({"annulled": ["0x01"]}, "annulled[0]"),
    ({"superseded": {"0x" + "02" * 32: "nope"}}, "superseded"),
])
def test_a_bad_pack_is_named(change: dict[str, Any], named: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        load_trust_pack(json.dumps({**GOOD, **change}), source="trust pack 'p.json'")
    assert caught.value.exit_code == 2
    assert str(caught.value).startswith(f"trust pack 'p.json': {named}")


def test_missing_field_is_named() -> None:
    without = {key: value for key, value in GOOD.items() if key != "block"}
    with pytest.raises(InvalidInput, match="block — missing"):
        load_trust_pack(json.dumps(without))


def test_size_and_depth_are_bounded() -> None:
    deep = {**GOOD, "hosts": [[[[[["oc.example.pe"]]]]]]}
    with pytest.raises(InvalidInput, match="depth|nest"):
        load_trust_pack(json.dumps(deep))
    with pytest.raises(InvalidInput, match="limit"):
        load_trust_pack(b'{"format": "' + b"x" * (16 * 1024 * 1024 + 1) + b'"}')
    with pytest.raises(InvalidInput, match="must be a JSON object"):
        load_trust_pack("[]")


def test_events_and_storage_must_agree(registry: Registry, anvil: Any) -> None:
    """A node whose hasRole answers contradict the role events it serves: no pack, one named refusal."""
    from peru_compras.chain.rpc import Rpc
    from peru_compras.errors import ChainRefused

    from .test_quorum import Proxy

    true_word = "0x" + "00" * 31 + "01"
    proxy = Proxy(anvil.url, lambda method, result: "0x" + "00" * 32 if result == true_word else result)
    try:
        lying = Registry(Rpc(proxy.url), registry.address, from_block=registry.from_block)
        with pytest.raises(ChainRefused, match="hasRole says not"):
            build_trust_pack(lying)
    finally:
        proxy.close()
