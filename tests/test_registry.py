"""The chain client against a real Anvil node and the compiled registry."""

from __future__ import annotations

import pytest
from eth_account.signers.local import LocalAccount

from peru_compras.chain.client import Registry
from peru_compras.chain.networks import network
from peru_compras.chain.rpc import Rpc
from peru_compras.chain.transactions import Transactor
from peru_compras.errors import (
    ConfigurationError,
    NotAuthorized,
    OrderAlreadyRegistered,
    OrderNotRegistered,
    OrderNotValid,
    RegistryPaused,
)
from peru_compras.hashing import sha256
from peru_compras.order import Order, parse_order

from .conftest import funded_account, reference_order

_counter = iter(range(10**6))


def fresh_order(**changes: object) -> Order:
    return parse_order(reference_order(order_number=f"OC-T-{next(_counter):06d}", **changes))


def test_register_then_read_back_every_field(registry: Registry, admin: LocalAccount) -> None:
    order = fresh_order()
    digest = sha256(b"pdf-" + order.order_number.encode())
    registration = registry.register(order, digest)
    record = registry.read(order.token_id)
    assert record.order.canonical_bytes() == order.canonical_bytes()
    assert record.state.document_hash == digest
    assert record.state.status == "valid"
    assert record.registrar == admin.address
    assert record.tx_hash == registration.tx_hash
    assert record.document_url == "https://oc.example.pe/d/" + registration.hashlink
    assert registry.find_by_hash(digest) == [order.token_id]


def test_single_registration_gas_within_goal(registry: Registry) -> None:
    order = parse_order(reference_order(order_number="OC-2026-004512"))
    assert registry.register(order, sha256(b"reference")).gas_used <= 60_000


def test_batch_registers_all_and_reads_each(registry: Registry) -> None:
    orders = [(fresh_order(), sha256(f"batch-{i}".encode())) for i in range(100)]
    before = registry.total_supply()
    registrations = registry.register_many(orders)
    assert registry.total_supply() == before + 100
    assert {r.tx_hash for r in registrations} == {registrations[0].tx_hash}
    assert registrations[0].gas_used <= 35_000
    assert registry.read(orders[57][0].token_id).order == orders[57][0]


def test_duplicate_order_is_refused_with_its_values(registry: Registry) -> None:
    order = fresh_order()
    registry.register(order, sha256(b"first " + order.order_number.encode()))
    with pytest.raises(OrderAlreadyRegistered) as caught:
        registry.register(order, sha256(b"second " + order.order_number.encode()))
    assert order.order_number in str(caught.value) and "20131370998" in str(caught.value)
    assert caught.value.token_id == order.token_id


def test_same_document_is_refused_before_sending(registry: Registry) -> None:
    digest = sha256(b"one document, two orders")
    registry.register(fresh_order(), digest)
    count = registry.total_supply()
    with pytest.raises(OrderAlreadyRegistered, match="document hl:"):
        registry.register(fresh_order(), digest)
    assert registry.total_supply() == count


def test_annul_keeps_the_token_and_records_the_reason(registry: Registry) -> None:
    order = fresh_order()
    registry.register(order, sha256(b"to annul " + order.order_number.encode()))
    registry.annul(order.token_id, "Monto mal digitado")
    record = registry.read(order.token_id)
    assert record.state.status == "annulled"
    assert record.annul_reason == "Monto mal digitado"
    with pytest.raises(OrderNotValid):
        registry.annul(order.token_id, "otra vez")


def test_supersede_links_both_ways(registry: Registry) -> None:
    old, new = fresh_order(), fresh_order()
    registry.register(old, sha256(b"old " + old.order_number.encode()))
    registration = registry.supersede(old.token_id, new, sha256(b"new " + new.order_number.encode()))
    assert registration.supersedes == old.token_id
    assert registry.state(old.token_id).status == "superseded"
    assert registry.state(old.token_id).replaced_by == new.token_id
    assert registry.state(new.token_id).replaces == old.token_id


def test_unknown_token_is_not_registered(registry: Registry) -> None:
    with pytest.raises(OrderNotRegistered):
        registry.read(12345)


def test_registrar_role_is_required(registry: Registry, rpc: Rpc) -> None:
    outsider = funded_account(rpc)
    theirs = Registry(rpc, registry.address, transactor=Transactor(rpc, outsider, network("local")))
    with pytest.raises(NotAuthorized, match="registrar"):
        theirs.register(fresh_order(), sha256(b"outsider"))
    registry.grant("registrar", outsider.address)
    assert outsider.address in registry.members("registrar")
    theirs.register(fresh_order(), sha256(b"outsider, now a registrar"))
    registry.revoke("registrar", outsider.address)
    assert outsider.address not in registry.members("registrar")


def test_paused_registry_refuses_registration(registry: Registry) -> None:
    registry.pause()
    try:
        with pytest.raises(RegistryPaused):
            registry.register(fresh_order(), sha256(b"while paused"))
    finally:
        registry.unpause()


def test_address_without_contract_is_a_configuration_error(rpc: Rpc) -> None:
    with pytest.raises(ConfigurationError, match="no contract"):
        Registry(rpc, "0x" + "12" * 20).check_deployed()


def test_wrong_chain_id_for_profile_is_refused(rpc: Rpc, admin: LocalAccount) -> None:
    with pytest.raises(ConfigurationError, match="chain id"):
        _ = Transactor(rpc, admin, network("lacnet-mainnet"), node_address="0x" + "11" * 20).chain_id


def test_resending_bytes_the_node_holds_returns_their_hash_not_a_second_transaction(admin: LocalAccount) -> None:
    from peru_compras.chain.node import LocalNode

    with LocalNode(extra_args=["--no-mining"]) as node:
        rpc = Rpc(node.url)
        rpc.call("anvil_setBalance", [admin.address, hex(10**24)])
        transactor = Transactor(rpc, admin, network("local"))
        first = transactor.send("0x" + "11" * 20, b"", action="send", gas=30_000)
        transactor._nonce = 0  # as if a restarted process re-sent the same transaction
        again = transactor.send("0x" + "11" * 20, b"", action="send", gas=30_000)
        assert again == first
        assert len(rpc.call("eth_getBlockByNumber", ["pending", False])["transactions"]) == 1
