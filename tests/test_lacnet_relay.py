"""What only LACNet does, through the emulator (tests/lacnet/emulator.py): the relay's refusals and how each
reaches the user as one clear line, the batch journal keeping refused orders retryable, the writer node's
nonce and receipts, and the hub's events read straight from the node."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from eth_abi.abi import encode as abi_encode
from eth_account import Account
from eth_account.signers.local import LocalAccount

from peru_compras.chain import lacnet
from peru_compras.chain.client import REGISTER, Registry
from peru_compras.chain.networks import network
from peru_compras.chain.rpc import Rpc, RpcError
from peru_compras.chain.transactions import Transactor
from peru_compras.errors import NotAuthorized, OrderAlreadyRegistered, RelayRefused
from peru_compras.hashing import sha256
from peru_compras.order import parse_order

from .conftest import CLI, reference_order
from .test_batch import make_orders, write_jsonl

_count = iter(range(10**6))


def fresh_order(tag: str) -> Any:
    return parse_order(reference_order(order_number=f"OC-RELAY-{tag}-{next(_count)}"))


@pytest.fixture(scope="module")
def emu(lacnet_emulator: Any) -> Any:
    return lacnet_emulator


def transactor(emu: Any, account: LocalAccount, *, name: str = "lacnet-protestnet") -> Transactor:
    profile = network(name)
    from dataclasses import replace

    return Transactor(Rpc(emu.url), account, replace(profile, trusted_forwarder=emu.forwarder),
                      node_address=emu.node_address)


@pytest.fixture(scope="module")
def signer(emu: Any) -> LocalAccount:
    account: LocalAccount = Account.create()
    emu.permit(account.address)
    return account


@pytest.fixture(scope="module")
def registry(emu: Any, signer: LocalAccount) -> Registry:
    deployed, _ = Registry.deploy(transactor(emu, signer), document_base_uri="https://oc.example.pe/d/")
    return deployed


def cli(emu: Any, home: Path, account: LocalAccount, *args: str, node_address: str | None = None,
        profile: str = "lacnet-protestnet") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PERU_COMPRAS_")}
    env.update(PERU_COMPRAS_PRIVATE_KEY=account.key.hex(), PERU_COMPRAS_BASE_URL="https://oc.example.pe")
    flags = ["--network", profile, "--rpc", emu.url, "--node-address", node_address or emu.node_address,
             "--trusted-forwarder", emu.forwarder]
    return subprocess.run([CLI, "--home", str(home), *flags, *args], env=env, capture_output=True, text=True,
                          timeout=120, stdin=subprocess.DEVNULL)


def one_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    assert len(lines) == 1, text
    return lines[0]


# -- the relay really is in between ---------------------------------------------------------------------


def test_the_contract_sees_the_signer_while_the_node_sends_hub_calls(emu: Any, registry: Registry,
                                                                    signer: LocalAccount) -> None:
    order = fresh_order("who")
    registration = registry.register(order, sha256(b"who " + order.order_number.encode()))
    relayed = registry.rpc.call("eth_getTransactionByHash", [registration.tx_hash])
    assert relayed["from"].lower() == emu.node_address.lower() and relayed["to"].lower() == emu.hub.lower()
    assert bytes.fromhex(relayed["input"][2:])[:4] == lacnet.RELAY_META_TX
    record = registry.read(order.token_id)  # decoded from inside relayMetaTx
    assert record.registrar == signer.address != emu.hub
    assert record.order == order
    assert registry.find_by_hash(record.state.document_hash) == [order.token_id]


def test_the_nonce_is_the_hubs_per_sender_nonce(emu: Any, registry: Registry, signer: LocalAccount) -> None:
    rpc = registry.rpc
    before = int(rpc.call("eth_getTransactionCount", [signer.address, "pending"]), 16)
    assert before >= 2  # deploy + at least one registration, all relayed
    assert int(rpc.call("eth_getTransactionCount", [signer.address, "latest"]), 16) == before
    registry.register(fresh_order("nonce"), sha256(b"nonce %d" % before))
    assert int(rpc.call("eth_getTransactionCount", [signer.address, "latest"]), 16) == before + 1
    with pytest.raises(RpcError, match="latest or pending"):
        rpc.call("eth_getTransactionCount", [signer.address, "earliest"])


def test_the_relay_takes_one_call_per_request(emu: Any) -> None:
    batch = [{"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []},
             {"jsonrpc": "2.0", "id": 2, "method": "eth_blockNumber", "params": []}]
    answer = requests.post(emu.url, json=batch, timeout=10).json()
    assert answer["error"]["code"] == -32600 and "batch" in answer["error"]["message"]


# -- refusals, each a clear error ---------------------------------------------------------------------------


def test_a_bad_nonce_is_read_from_the_hubs_event_despite_status_1(emu: Any, registry: Registry,
                                                                  signer: LocalAccount) -> None:
    sender = transactor(emu, signer)
    order = fresh_order("badnonce")
    data = REGISTER + abi_encode(["bytes"], [order.encode_entry(sha256(b"bad nonce"))])
    raw, _ = sender.sign(registry.address, data, 400_000, sender.take_nonce() + 5)
    tx_hash = sender.rpc.call("eth_sendRawTransaction", ["0x" + raw.hex()])
    receipt = sender.rpc.call("eth_getTransactionReceipt", [tx_hash])
    for _ in range(100):
        if receipt:
            break
        time.sleep(0.02)
        receipt = sender.rpc.call("eth_getTransactionReceipt", [tx_hash])
    assert int(receipt["status"], 16) == 1  # as on LACNet: only the logs tell
    with pytest.raises(RelayRefused, match=r"BadNonce \(code 2\)") as caught:
        sender.wait(tx_hash, action=f"register order {order.order_number!r}")
    assert order.order_number in str(caught.value) and "\n" not in str(caught.value)
    assert not registry.state(order.token_id).registered
    registry.register(order, sha256(b"bad nonce"))  # the nonce is re-read: the next one goes through
    assert registry.state(order.token_id).registered


def test_a_relayed_revert_becomes_the_contracts_named_error(emu: Any, registry: Registry) -> None:
    order = fresh_order("revert")
    registry.register(order, sha256(b"first " + order.order_number.encode()))
    again = REGISTER + abi_encode(["bytes"], [order.encode_entry(sha256(b"second"))])
    with pytest.raises(OrderAlreadyRegistered, match=order.order_number):  # from the receipt's revertReason
        registry.transactor.transact(registry.address, again, action="register again", gas=500_000)  # type: ignore


def test_raw_node_receipts_are_read_from_the_hubs_events(emu: Any, signer: LocalAccount) -> None:
    """Without the front's rewriting (a relay that leaves receipts as they are), the client still finds the
    deployment's address in ContractDeployed and the refusal in BadTransactionSent."""
    sender = transactor(emu, signer)
    deployed, receipt = Registry.deploy(sender)
    raw = emu.anvil.call("eth_getTransactionReceipt", [receipt.tx_hash])
    assert raw["contractAddress"] is None  # the node's transaction called the hub
    assert sender.read_receipt(receipt.tx_hash, raw, action="deploy").contract_address == deployed.address


def test_an_unpermissioned_account_is_one_clear_line(emu: Any, tmp_path: Path) -> None:
    stranger: LocalAccount = Account.create()
    with pytest.raises(NotAuthorized, match=f"refuses account {stranger.address}.*-32007"):
        Registry.deploy(transactor(emu, stranger))
    result = cli(emu, tmp_path / "home", stranger, "deploy")
    assert result.returncode == 1
    line = one_line(result.stderr)
    assert f"the network refuses account {stranger.address}" in line and "permissioned" in line


def test_a_node_address_that_is_not_the_writer_node_is_refused(emu: Any, signer: LocalAccount,
                                                              tmp_path: Path) -> None:
    other = "0x" + "5a" * 20
    result = cli(emu, tmp_path / "home", signer, "deploy", node_address=other)
    assert result.returncode == 1
    assert "is not this writer node" in one_line(result.stderr)


def test_an_expired_transaction_is_refused_by_the_relay(emu: Any, registry: Registry, signer: LocalAccount) -> None:
    sender = transactor(emu, signer)
    raw, _ = lacnet.sign(signer, to=registry.address, data=b"\x12\x34", gas=400_000, nonce=sender.take_nonce(),
                         node_address=emu.node_address, expiration=int(time.time()) - 5)
    with pytest.raises(RpcError) as caught:
        sender.rpc.call("eth_sendRawTransaction", ["0x" + raw.hex()], retry=False)
    refusal = sender.send_refusal(caught.value, "annul")
    assert "has passed" in str(refusal) and "\n" not in str(refusal)
    sender.resync_nonce()


def test_a_wrong_chain_id_for_the_profile_is_refused_before_signing(emu: Any, signer: LocalAccount,
                                                                   tmp_path: Path) -> None:
    relayed = emu.relayed
    result = cli(emu, tmp_path / "home", signer, "deploy", profile="lacnet-mainnet")
    assert result.returncode == 2
    assert "has chain id 648540, but profile lacnet-mainnet expects 648541" in one_line(result.stderr)
    assert emu.relayed == relayed


# -- the batch journal after a refusal ------------------------------------------------------------------------


def test_a_relay_refusal_leaves_the_batch_retryable(emu: Any, signer: LocalAccount, tmp_path: Path) -> None:
    home = tmp_path / "home"
    deployed = cli(emu, home, signer, "deploy", "--json")
    assert deployed.returncode == 0, deployed.stderr
    address = json.loads(deployed.stdout)["registry"]
    rows = make_orders(tmp_path / "m", 4, prefix="OC-RELAY-BATCH")
    manifest = write_jsonl(tmp_path / "m" / "manifest.jsonl", rows)

    emu.starve_next = 1  # the writer node gives the next relay too little gas: the hub refuses it
    refused = cli(emu, home, signer, "register-batch", str(manifest), "--batch-size", "2", "--no-stamp", "--json")
    assert refused.returncode == 1
    errors = [x for x in refused.stderr.splitlines() if x.startswith("error:")]  # (the rest: the progress bar)
    assert len(errors) == 1, refused.stderr
    line = errors[0]
    assert "NotEnoughGas (code 3)" in line and "run the same command again" in line
    assert emu.starve_next == 0
    with sqlite3.connect(home / "journal.sqlite") as db:
        states = {state for (state,) in db.execute("SELECT state FROM orders")}
    assert "signed" not in states  # nothing left in limbo: refused orders are ready again

    again = cli(emu, home, signer, "register-batch", str(manifest), "--batch-size", "2", "--no-stamp", "--json")
    assert again.returncode == 0, again.stderr
    summary = json.loads(again.stdout.splitlines()[-1])["summary"]
    first_lines = [json.loads(x) for x in refused.stdout.splitlines() if x.strip()]
    first_registered = sum(1 for x in first_lines if x.get("status") == "registered")
    assert summary["registered"] + first_registered == 4 and summary["failed"] == 0
    registry = Registry(Rpc(emu.url), address)
    assert registry.total_supply() == 4  # each order exactly once


def test_an_encrypted_keystore_signs_through_the_relay(emu: Any, tmp_path: Path) -> None:
    account: LocalAccount = Account.create()
    emu.permit(account.address)
    keystore = tmp_path / "registrar.json"
    keystore.write_text(json.dumps(Account.encrypt(account.key, "clave secreta", kdf="pbkdf2", iterations=2048)))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PERU_COMPRAS_")}
    env["PERU_COMPRAS_KEYSTORE_PASSWORD"] = "clave secreta"
    result = subprocess.run([CLI, "--home", str(tmp_path / "home"), "--network", "lacnet-protestnet", "--rpc", emu.url,
                             "--node-address", emu.node_address, "--trusted-forwarder", emu.forwarder,
                             "--keystore", str(keystore), "deploy", "--json"],
                            env=env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    registry = Registry(Rpc(emu.url), json.loads(result.stdout)["registry"])
    assert registry.has_role("admin", account.address)
    assert account.key.hex().removeprefix("0x") not in result.stdout + result.stderr


@pytest.mark.parametrize("expired", [False, True], ids=["resent", "expired"])
def test_a_crash_before_the_relay_hash_was_journaled_neither_loses_nor_doubles(emu: Any, signer: LocalAccount,
                                                                             tmp_path: Path, expired: bool) -> None:
    """The batch journals the signed bytes under their own hash, sends them, and only then learns the relay's
    hash. A crash in between: the next run re-sends the bytes and the hub refuses them (BadNonce: already
    executed), or the relay refuses them (expired); either way each order is found on chain, reported once."""
    from peru_compras.batch import Journal, prepare, read_manifest

    home = tmp_path / "home"
    deployed = cli(emu, home, signer, "deploy", "--json")
    assert deployed.returncode == 0, deployed.stderr
    address = json.loads(deployed.stdout)["registry"]
    rows = make_orders(tmp_path / "m", 3, prefix="OC-RELAY-CRASH")
    manifest = write_jsonl(tmp_path / "m" / "manifest.jsonl", rows)
    prepared = [prepare(row, "https://oc.example.pe", False, home / "documents") for row in read_manifest(manifest)]
    sender = transactor(emu, signer)
    nonce = sender.take_nonce()
    expiration = int(time.time()) + 2 if expired else None
    raw, raw_hash = sender.sign(address, Registry.batch_calldata([p.entry for p in prepared]), 1_000_000, nonce,
                                expiration=expiration)
    Journal(home / "journal.sqlite", address).signed(raw_hash, signer.address, nonce, raw, prepared)
    relay_hash = sender.rpc.call("eth_sendRawTransaction", ["0x" + raw.hex()])  # ... and the process dies here
    assert relay_hash != raw_hash
    registry = Registry(Rpc(emu.url), address)
    assert registry.total_supply() == 3

    if expiration is not None:
        time.sleep(max(expiration + 1 - time.time(), 0))
    relayed = emu.relayed
    resumed = cli(emu, home, signer, "register-batch", str(manifest), "--no-stamp", "--json")
    assert resumed.returncode == 0, resumed.stderr
    out = [json.loads(line) for line in resumed.stdout.splitlines()]
    assert out[-1] == {"summary": {"registered": 3, "already_registered": 0, "failed": 0}}
    assert emu.relayed == relayed + (0 if expired else 1)  # re-sent bytes the hub refused; nothing else sent
    assert registry.total_supply() == 3
