"""A node or relay that hands back bytes our strict ABI decoder refuses: each place says what was bad, in one
line with the documented exit code, never "internal error".

The node is the session's real Anvil; the garbage is put into its answers by wrapping ``Rpc.call`` in this
process (the CLI runs in-process), so every other byte is the chain's own. The shapes are an attacker's:
a truncated word, an offset or a length past the end, non-zero padding, bytes that are not UTF-8."""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import rlp
from eth_abi.abi import encode as abi_encode

from peru_compras.chain.client import (
    ORDER_ANNULLED,
    ORDER_REGISTERED,
    REGISTER,
    ROLE_GRANTED,
    TRANSFER,
    UNREADABLE_REASON,
    Registry,
    order_entries,
)
from peru_compras.chain.lacnet import RELAY_META_TX
from peru_compras.chain.metatx import CONTRACT_DEPLOYED
from peru_compras.chain.rpc import Rpc
from peru_compras.hashing import sha256
from peru_compras.order import Order, parse_order

from .conftest import Runner, reference_order
from .lacnet.metatx import MetaTxEmulator
from .test_lacnet_metatx import onboard

_counter = itertools.count()
WORD = 32


def _word(value: int) -> bytes:
    return value.to_bytes(WORD, "big")


#: OrderAnnulled's data is abi.encode(string reason): each shape below is not that
BAD_REASONS = {
    "truncated word": _word(32) + _word(5)[:20],
    "offset past the end": _word(4096) + _word(5) + b"hello".ljust(WORD, b"\0"),
    "length past the end": _word(32) + _word(10_000) + b"hello".ljust(WORD, b"\0"),
    "non-zero padding": _word(32) + _word(5) + b"hello".ljust(WORD, b"\x01"),
}  # (data that is not hex at all is already refused where the logs are read: the node's invalid answer)


def _fresh_order() -> Order:
    return parse_order(reference_order(order_number=f"OC-HOSTILE-{next(_counter):06d}"))


@pytest.fixture(scope="module")
def annulled(registry: Registry) -> Order:
    order = _fresh_order()
    registry.register(order, sha256(b"hostile " + order.order_number.encode()))
    registry.annul(order.token_id, "Monto mal digitado")
    return order


@pytest.fixture
def rewrite(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[Callable[[str, Any], Any]], None]]:
    """``rewrite(rule)``: every node answer goes through ``rule(method, result)`` first."""
    real = Rpc.call

    def install(rule: Callable[[str, Any], Any]) -> None:
        def call(self: Rpc, method: str, params: list[Any] | None = None, **kw: Any) -> Any:
            return rule(method, real(self, method, params, **kw))
        monkeypatch.setattr(Rpc, "call", call)

    yield install


def _bad_annul_logs(shape: str) -> Callable[[str, Any], Any]:
    def rule(method: str, result: Any) -> Any:
        if method == "eth_getLogs":
            return [{**log, "data": "0x" + BAD_REASONS[shape].hex()} if log["topics"][0] == ORDER_ANNULLED else log
                    for log in result]
        return result
    return rule


@pytest.mark.parametrize("shape", list(BAD_REASONS))
def test_show_marks_an_annul_reason_that_is_not_abi_unreadable(cli: Runner, registry: Registry, annulled: Order,
                                                               rewrite: Any, shape: str) -> None:
    rewrite(_bad_annul_logs(shape))
    shown = cli("show", f"0x{annulled.token_id:064x}", "--registry", registry.address, "--json")
    assert "internal error" not in shown.stderr
    assert shown.code == 0, shown.stderr  # show of an annulled order exits 0, as with a readable reason
    data = shown.json()
    assert (data["status"], data["annul_reason"]) == ("annulled", UNREADABLE_REASON)
    assert data["order_number"] == annulled.order_number  # the rest of the record is still read


def test_a_reason_that_is_not_utf8_is_shown_with_replacement_characters(registry: Registry, annulled: Order,
                                                                        rewrite: Any) -> None:
    not_utf8 = "0x" + abi_encode(["bytes"], [b"Monto \xff\xfe"]).hex()

    def rule(method: str, result: Any) -> Any:
        if method == "eth_getLogs":
            return [{**log, "data": not_utf8} if log["topics"][0] == ORDER_ANNULLED else log for log in result]
        return result
    rewrite(rule)
    assert registry.read(annulled.token_id).annul_reason == "Monto \ufffd\ufffd"


@pytest.mark.parametrize("shape", ["offset past the end", "non-zero padding"])
def test_the_mirror_keeps_an_annulment_whose_reason_is_not_abi(cli: Runner, registry: Registry, annulled: Order,
                                                              rewrite: Any, tmp_path: Path, shape: str) -> None:
    rewrite(_bad_annul_logs(shape))
    out = tmp_path / f"mirror-{shape.replace(' ', '-')}.sqlite"
    result = cli("mirror", "--registry", registry.address, "--out", str(out), "--json")
    assert "internal error" not in result.stderr
    assert result.code == 0, result.stderr
    with sqlite3.connect(out) as db:
        (status, reason), = db.execute("SELECT status, annul_reason FROM orders WHERE token_id = ?",
                                       (f"0x{annulled.token_id:064x}",)).fetchall()
    assert (status, reason) == ("annulled", UNREADABLE_REASON)


def _relayed(suffix: bytes) -> bytes:
    """A LACNet hub ``relayMetaTx`` input whose original transaction's data ends in `suffix`."""
    signing = rlp.encode([b"\x01", b"", b"\x0f\x42\x40", b"\x11" * 20, b"", REGISTER + b"\0" * 8 + suffix])
    return RELAY_META_TX + abi_encode(["uint256", "bytes", "uint8", "bytes32", "bytes32"],
                                      [0, signing, 27, b"\0" * 32, b"\0" * 32])


#: calldata a node may claim registered a token: none of it decodes
BAD_INPUTS = {
    "register: truncated word": REGISTER + _word(32)[:20],
    "register: length past the end": REGISTER + _word(32) + _word(10_000),
    "relayMetaTx: suffix address with non-zero padding": _relayed(b"\xff" * 12 + b"\x22" * 20 + _word(1)),
}


@pytest.mark.parametrize("shape", list(BAD_INPUTS))
def test_order_entries_of_undecodable_calldata_are_none(shape: str) -> None:
    assert order_entries(BAD_INPUTS[shape]) == []


@pytest.mark.parametrize("shape", list(BAD_INPUTS))
def test_show_names_a_registering_transaction_whose_input_does_not_decode(cli: Runner, registry: Registry,
                                                                        rewrite: Any, shape: str) -> None:
    order = _fresh_order()
    registry.register(order, sha256(b"input " + order.order_number.encode()))

    def rule(method: str, result: Any) -> Any:
        if method == "eth_getTransactionByHash" and result:
            return {**result, "input": "0x" + BAD_INPUTS[shape].hex()}
        return result
    rewrite(rule)
    shown = cli("show", f"0x{order.token_id:064x}", "--registry", registry.address)
    assert "internal error" not in shown.stderr
    assert shown.code == 1, shown.stderr
    assert "was not found in the registering transaction" in shown.stderr


@pytest.mark.parametrize("shape", ["truncated word", "non-zero padding"])
def test_deploy_through_the_metatx_hub_names_a_contract_deployed_log_that_does_not_decode(
        rewrite: Any, tmp_path: Path, shape: str) -> None:
    # ContractDeployed's data is abi.encode(address deployed, bytes32 dataHash)
    garbage = {"truncated word": _word(0x22)[:31], "non-zero padding": b"\xff" * 12 + b"\x22" * 20 + _word(0)}[shape]

    def rule(method: str, result: Any) -> Any:
        if method == "eth_getTransactionReceipt" and result:
            return {**result, "logs": [{**log, "data": "0x" + garbage.hex()}
                                       if log["topics"] and log["topics"][0] == CONTRACT_DEPLOYED else log
                                       for log in result["logs"]]}
        return result
    with MetaTxEmulator() as emu:
        operator = onboard(emu, tmp_path, deploy=False)
        rewrite(rule)
        done = operator.cli("deploy", "--json")
    assert "internal error" not in done.stderr
    assert done.returncode == 1, done.stderr
    assert "ContractDeployed log" in done.stderr and "not (address, bytes32)" in done.stderr
    # the registry may exist: the next step is to read its address elsewhere, not to deploy a second one
    assert "the hub ran the deployment" in done.stderr and "deploying again would make a second registry" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


# -- logs cut short: a topic the code reads after the ones the filter asked for ------------------------------

def _cut_topics(event: str, keep: int) -> Callable[[str, Any], Any]:
    """Every `event` log a node answers keeps only its first `keep` topics."""
    def rule(method: str, result: Any) -> Any:
        if method == "eth_getLogs" and isinstance(result, list):
            return [{**log, "topics": log["topics"][:keep]} if log["topics"] and log["topics"][0] == event else log
                    for log in result]
        return result
    return rule


@pytest.mark.parametrize(("command", "event", "keep", "named"), [
    ("show", ORDER_REGISTERED, 2, "where 3 32-byte hex words were expected"),  # its registrar: topic 2
    ("roles", ROLE_GRANTED, 2, "where 3 32-byte hex words were expected"),  # the account
    ("export-ocds", TRANSFER, 3, "where 4 32-byte hex words were expected"),  # the token
])
def test_a_log_without_the_topic_read_from_it_is_the_nodes_invalid_answer(
        cli: Runner, registry: Registry, annulled: Order, rewrite: Any, tmp_path: Path, command: str, event: str,
        keep: int, named: str) -> None:
    args = {"show": ["show", f"0x{annulled.token_id:064x}"], "roles": ["roles", "list"],
            "export-ocds": ["export-ocds", "--out", str(tmp_path / "p.json")]}[command]
    rewrite(_cut_topics(event, keep))
    done = cli(*args, "--registry", registry.address)
    assert "internal error" not in done.stderr
    assert done.code == 1, done.stderr
    assert named in done.stderr and "answered eth_getLogs" in done.stderr
    assert not (tmp_path / "p.json").exists()  # nothing half-written


def test_the_mirror_reads_an_order_whose_registration_log_is_cut_short_as_unpaired(
        cli: Runner, registry: Registry, annulled: Order, rewrite: Any, tmp_path: Path) -> None:
    """The mirror pairs each mint with its OrderRegistered log (hash, registrar); one cut short is not paired
    (never an IndexError): the order is still mirrored, from its Transfer and its calldata."""
    rewrite(_cut_topics(ORDER_REGISTERED, 2))
    out = tmp_path / "mirror.sqlite"
    result = cli("mirror", "--registry", registry.address, "--out", str(out), "--json")
    assert "internal error" not in result.stderr
    assert result.code == 0, result.stderr
    with sqlite3.connect(out) as db:
        rows = db.execute("SELECT order_number FROM orders WHERE token_id = ?",
                          (f"0x{annulled.token_id:064x}",)).fetchall()
    assert rows == [(annulled.order_number,)]


@pytest.mark.parametrize("block_hash", [None, "0x1234", 7])
def test_a_mint_log_without_a_block_hash_is_the_nodes_invalid_answer(
        cli: Runner, registry: Registry, annulled: Order, rewrite: Any, block_hash: Any) -> None:
    """show reads the registering block's OrderRegistered log by the mint log's blockHash."""
    def rule(method: str, result: Any) -> Any:
        if method == "eth_getLogs" and isinstance(result, list):
            return [({key: value for key, value in log.items() if key != "blockHash"} if block_hash is None
                     else {**log, "blockHash": block_hash}) if log["topics"][0] == TRANSFER else log
                    for log in result]
        return result
    rewrite(rule)
    done = cli("show", f"0x{annulled.token_id:064x}", "--registry", registry.address)
    assert "internal error" not in done.stderr
    assert done.code == 1, done.stderr
    assert f"blockHash {block_hash} where a 32-byte hex word was expected" in done.stderr
