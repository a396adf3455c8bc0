"""What only LACNet does, through the emulator (tests/lacnet/emulator.py, rebuilt from LACNet's sources): the
hub's 5-argument call carrying our data with its suffix, the relay's and the hub's refusals and how each
reaches the user as one clear line (NotEnoughGas retried over the next blocks, BAD NONCE resynchronised, both
bounded), the gas the user and the node ask for, the batch journal keeping refused orders retryable, the
writer node's nonces and receipts, and the hub's events read straight from the node."""

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
from eth_utils.address import to_checksum_address as to_checksum
from eth_utils.crypto import keccak

from peru_compras.chain import lacnet
from peru_compras.chain.client import REGISTER, Registry
from peru_compras.chain.networks import network
from peru_compras.chain.rpc import Rpc, RpcError
from peru_compras.chain.transactions import NONCE_RESYNCS, NOT_ENOUGH_GAS_ATTEMPTS, Transactor
from peru_compras.errors import NotAuthorized, OrderAlreadyRegistered, RelayRefused
from peru_compras.hashing import sha256
from peru_compras.order import parse_order

from .conftest import reference_order, run_cli
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
    return run_cli(["--home", str(home), *flags, *args], env=env, timeout=120)


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
    hub_input = bytes.fromhex(relayed["input"][2:])
    assert hub_input[:4] == lacnet.RELAY_META_TX  # the 5-argument form, 0x1416862c
    record = registry.read(order.token_id)  # decoded from inside relayMetaTx
    assert record.registrar == signer.address != emu.hub
    assert record.order == order
    assert registry.find_by_hash(record.state.document_hash) == [order.token_id]
    # the hub called the registry with our data exactly as signed (suffix included) and our gas + 600
    signing = lacnet.hub_signing_data(hub_input)
    assert signing is not None
    original = lacnet.original_transaction(signing)
    trace = emu.anvil.call("debug_traceTransaction", [registration.tx_hash, {"tracer": "callTracer"}])
    inner = next(call for call in trace["calls"] if call["to"].lower() == registry.address.lower()
                 and call["type"] == "CALL")
    sent = bytes.fromhex(inner["input"][2:])
    assert sent[:-lacnet.SUFFIX_BYTES] == original.data and len(sent) == len(original.data) + 64
    assert sent[-64:] == abi_encode(["address", "uint256"], [emu.node_address, original.expiration])
    assert int(inner["gas"], 16) == original.gas + 600
    # no floor on our gas: the estimate with its margin; the node's transaction has the relay's rule
    assert original.gas < len(sent) * 22 + 326_000
    assert int(relayed["gas"], 16) == len(sent) * 105 + 300_000 + original.gas


def test_a_document_registered_through_the_relay_is_named_with_its_token(emu: Any, registry: Registry) -> None:
    """The duplicate-hash check finds the token inside the hub's call (it said token 0 with the 4-argument
    decoder alone)."""
    order = fresh_order("duplicate")
    digest = sha256(b"duplicate " + order.order_number.encode())
    registry.register(order, digest)
    again = fresh_order("duplicate-again")
    with pytest.raises(OrderAlreadyRegistered, match=f"already registered as token 0x{order.token_id:064x}") as caught:
        registry.register(again, digest)
    assert caught.value.token_id == order.token_id != 0


def test_latest_is_the_hubs_nonce_per_node_and_pending_can_lag(emu: Any, registry: Registry,
                                                               signer: LocalAccount) -> None:
    rpc = registry.rpc
    registry.register(fresh_order("nonce-first"), sha256(b"nonce first"))
    latest = int(rpc.call("eth_getTransactionCount", [signer.address, "latest"]), 16)
    assert latest >= 2  # deploy + at least one registration, all relayed
    # the relay's map holds the nonce used on its first send, then +1 per send: one behind the hub
    assert int(rpc.call("eth_getTransactionCount", [signer.address, "pending"]), 16) == latest - 1
    assert int(rpc.call("eth_getTransactionCount", [signer.address.lower(), "pending"]), 16) == latest  # map miss
    registry.register(fresh_order("nonce"), sha256(b"nonce %d" % latest))
    assert int(rpc.call("eth_getTransactionCount", [signer.address, "latest"]), 16) == latest + 1
    # the hub keeps nonces per writer node: through another node this sender has sent nothing
    other_node = "0x" + "0d" * 20
    data = keccak(b"getNonce(address)")[:4] + abi_encode(["address"], [signer.address])
    seen = emu.anvil.call("eth_call", [{"from": other_node, "to": emu.hub, "data": "0x" + data.hex()}, "latest"])
    assert int(seen, 16) == 0
    with pytest.raises(RpcError, match="only pending or latest"):
        rpc.call("eth_getTransactionCount", [signer.address, "earliest"])


def test_the_relay_takes_one_call_per_request(emu: Any, signer: LocalAccount) -> None:
    reads = [{"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []},
             {"jsonrpc": "2.0", "id": 2, "method": "eth_blockNumber", "params": []}]
    assert len(requests.post(emu.url, json=reads, timeout=10).json()) == 2  # the node answers it
    relayed = [*reads, {"jsonrpc": "2.0", "id": 3, "method": "eth_getTransactionCount",
                        "params": [signer.address, "latest"]}]
    assert requests.post(emu.url, json=relayed, timeout=10).content == b""  # the relay cannot read it


# -- refusals, each a clear error ---------------------------------------------------------------------------


def test_bad_nonce_from_the_relay_is_resynchronised_within_a_bound(emu: Any, registry: Registry,
                                                                   signer: LocalAccount) -> None:
    sender = transactor(emu, signer)
    sender.take_nonce()
    sender._nonce = (sender._nonce or 0) + 5  # stale bookkeeping, as after another process used the key
    order = fresh_order("badnonce")
    refused = emu.refused_nonces
    Registry(sender.rpc, registry.address, transactor=sender).register(order, sha256(b"bad nonce"))
    assert emu.refused_nonces == refused + 1  # the relay said BAD NONCE once; the latest nonce was read again
    assert registry.state(order.token_id).registered

    emu.refuse_nonce_next = 100  # another process keeps taking the nonce
    stuck = fresh_order("badnonce-stuck")
    try:
        with pytest.raises(RelayRefused, match="refused nonce .* 4 times") as caught:
            registry.register(stuck, sha256(b"bad nonce stuck"))
    finally:
        left, emu.refuse_nonce_next = emu.refuse_nonce_next, 0
    assert 100 - left == NONCE_RESYNCS + 1  # bounded
    assert "BAD NONCE" in str(caught.value) and "\n" not in str(caught.value)
    assert not registry.state(stuck.token_id).registered


def test_not_enough_gas_is_retried_over_the_next_blocks_then_refused(emu: Any, registry: Registry) -> None:
    order = fresh_order("starved")
    relayed = emu.relayed
    emu.starve_next = 2  # the hub finds the node's allowance used up twice: status 1, no hub event
    registration = registry.register(order, sha256(b"starved " + order.order_number.encode()))
    assert emu.relayed == relayed + 3 and emu.starve_next == 0
    assert registry.read(order.token_id).tx_hash == registration.tx_hash

    hopeless = fresh_order("starved-for-good")
    emu.starve_next = 100
    try:
        with pytest.raises(lacnet.HubRefused, match="no TransactionRelayed event.*NotEnoughGas") as caught:
            registry.register(hopeless, sha256(b"hopeless"))
    finally:
        left, emu.starve_next = emu.starve_next, 0
    assert 100 - left == NOT_ENOUGH_GAS_ATTEMPTS and caught.value.code == lacnet.NOT_ENOUGH_GAS
    assert f"tried {NOT_ENOUGH_GAS_ATTEMPTS} times" in str(caught.value) and "allowance" in str(caught.value)
    assert not registry.state(hopeless.token_id).registered


def test_a_signature_with_a_chain_id_is_not_refused_by_the_relay_but_by_the_hub(emu: Any, registry: Registry,
                                                                                signer: LocalAccount) -> None:
    """LACNet's relay checks no chain id: the hub recovers nobody from an EIP-155 signature (InvalidSignature,
    status 1), and the client says so."""
    sender = transactor(emu, signer)
    order = fresh_order("eip155")
    data = sender.payload(REGISTER + abi_encode(["bytes"], [order.encode_entry(sha256(b"eip155"))]))
    signed = signer.sign_transaction({"nonce": sender.take_nonce(), "gasPrice": 0, "gas": 300_000, "value": 0,
                                      "to": registry.address, "data": data, "chainId": 648540})
    tx_hash = sender.rpc.call("eth_sendRawTransaction", ["0x" + bytes(signed.raw_transaction).hex()])
    with pytest.raises(lacnet.HubRefused, match=r"InvalidSignature \(code 6\)"):
        sender.wait(tx_hash, action="register")
    receipt = sender.rpc.call("eth_getTransactionReceipt", [tx_hash])
    assert receipt["status"] == "0x1" and "revertReason" not in receipt  # the relay leaves BadTransactionSent be
    assert not registry.state(order.token_id).registered


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
    with pytest.raises(NotAuthorized, match=f"refuses account {stranger.address}: account sender is not permitted"):
        Registry.deploy(transactor(emu, stranger))
    result = cli(emu, tmp_path / "home", stranger, "deploy")
    assert result.returncode == 1
    line = one_line(result.stderr)
    assert f"relay refuses account {stranger.address}" in line and "permissioned" in line


def test_a_node_address_that_is_not_the_writer_node_is_refused(emu: Any, signer: LocalAccount,
                                                              tmp_path: Path) -> None:
    """The account rules refuse the node's hub call (the suffix names another node): Besu's -32007, wrapped by
    the relay in -32603; the hint names the node address to check."""
    other = "0x" + "5a" * 20
    result = cli(emu, tmp_path / "home", signer, "deploy", node_address=other)
    assert result.returncode == 1
    line = one_line(result.stderr)
    assert "-32603" in line and "not authorized" in line and f"--node-address {to_checksum(other)}" in line


def test_an_expired_transaction_is_refused_by_the_relay(emu: Any, registry: Registry, signer: LocalAccount) -> None:
    sender = transactor(emu, signer)
    raw, _ = lacnet.sign(signer, to=registry.address, data=b"\x12\x34", gas=400_000, nonce=sender.take_nonce(),
                         node_address=emu.node_address, expiration=int(time.time()) - 5)
    with pytest.raises(RpcError) as caught:
        sender.rpc.call("eth_sendRawTransaction", ["0x" + raw.hex()], retry=False)
    assert caught.value.code == -32603  # the account rules on the node's transaction: expiration passed
    refusal = sender.send_refusal(caught.value, "annul")
    assert isinstance(refusal, NotAuthorized) and "clock" in str(refusal) and "\n" not in str(refusal)
    sender.resync_nonce()


def test_a_wrong_chain_id_for_the_profile_is_refused_before_signing(emu: Any, signer: LocalAccount,
                                                                   tmp_path: Path) -> None:
    relayed = emu.relayed
    result = cli(emu, tmp_path / "home", signer, "deploy", profile="lacnet-mainnet")
    assert result.returncode == 2
    assert "has chain id 648540, but profile lacnet-mainnet expects 648541" in one_line(result.stderr)
    assert emu.relayed == relayed


# -- the batch journal after a refusal ------------------------------------------------------------------------


def deployed_with_manifest(emu: Any, signer: LocalAccount, tmp_path: Path, count: int, prefix: str
                           ) -> tuple[Path, str, Path]:
    """A registry deployed through the relay by the CLI (home: tmp_path/home), and a manifest of `count` new
    orders: the home, the registry's address and the manifest."""
    home = tmp_path / "home"
    deployed = cli(emu, home, signer, "deploy", "--json")
    assert deployed.returncode == 0, deployed.stderr
    manifest = write_jsonl(tmp_path / "m" / "manifest.jsonl", make_orders(tmp_path / "m", count, prefix=prefix))
    return home, json.loads(deployed.stdout)["registry"], manifest


def test_the_batch_sends_again_what_the_hub_did_not_run(emu: Any, signer: LocalAccount, tmp_path: Path) -> None:
    """NotEnoughGas (status 1, no hub event) and BAD NONCE in the middle of a batch: the orders go out again in
    new transactions, each registered once, in one run."""
    home, address, manifest = deployed_with_manifest(emu, signer, tmp_path, 6, "OC-RELAY-RETRY")
    emu.starve_next, emu.refuse_nonce_next = 2, 1
    done = cli(emu, home, signer, "register-batch", str(manifest), "--batch-size", "2", "--no-stamp", "--json")
    assert done.returncode == 0, done.stderr
    assert (emu.starve_next, emu.refuse_nonce_next) == (0, 0)
    out = [json.loads(x) for x in done.stdout.splitlines()]
    assert out[-1] == {"summary": {"registered": 6, "already_registered": 0, "failed": 0}}
    assert Registry(Rpc(emu.url), address).total_supply() == 6


@pytest.mark.slow
def test_a_hub_that_never_has_gas_stops_the_batch_and_leaves_it_retryable(emu: Any, signer: LocalAccount,
                                                                         tmp_path: Path) -> None:
    home, address, manifest = deployed_with_manifest(emu, signer, tmp_path, 4, "OC-RELAY-BATCH")

    emu.starve_next = 1000  # the writer node's allowance stays used up
    try:
        refused = cli(emu, home, signer, "register-batch", str(manifest), "--batch-size", "2", "--no-stamp",
                      "--json")
    finally:
        emu.starve_next = 0
    assert refused.returncode == 1
    errors = [x for x in refused.stderr.splitlines() if x.startswith("error:")]  # (the rest: the progress bar)
    assert len(errors) == 1, refused.stderr
    assert "NotEnoughGas (code 3)" in errors[0] and "run the same command again" in errors[0]
    with sqlite3.connect(home / "journal.sqlite") as db:
        states = {state for (state,) in db.execute("SELECT state FROM orders")}
    assert "signed" not in states  # nothing left in limbo: refused orders are ready again

    again = cli(emu, home, signer, "register-batch", str(manifest), "--batch-size", "2", "--no-stamp", "--json")
    assert again.returncode == 0, again.stderr
    summary = json.loads(again.stdout.splitlines()[-1])["summary"]
    first_lines = [json.loads(x) for x in refused.stdout.splitlines() if x.strip()]
    first_registered = sum(1 for x in first_lines if x.get("status") == "registered")
    assert summary["registered"] + first_registered == 4 and summary["failed"] == 0
    assert Registry(Rpc(emu.url), address).total_supply() == 4  # each order exactly once


def test_an_encrypted_keystore_signs_through_the_relay(emu: Any, tmp_path: Path) -> None:
    account: LocalAccount = Account.create()
    emu.permit(account.address)
    keystore = tmp_path / "registrar.json"
    keystore.write_text(json.dumps(Account.encrypt(account.key, "clave secreta", kdf="pbkdf2", iterations=2048)))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PERU_COMPRAS_")}
    env["PERU_COMPRAS_KEYSTORE_PASSWORD"] = "clave secreta"
    result = run_cli(["--home", str(tmp_path / "home"), "--network", "lacnet-protestnet", "--rpc", emu.url,
                      "--node-address", emu.node_address, "--trusted-forwarder", emu.forwarder,
                      "--keystore", str(keystore), "deploy", "--json"], env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    registry = Registry(Rpc(emu.url), json.loads(result.stdout)["registry"])
    assert registry.has_role("admin", account.address)
    assert account.key.hex().removeprefix("0x") not in result.stdout + result.stderr


@pytest.mark.parametrize("expired", [False, True], ids=["resent", "expired"])
def test_a_crash_before_the_relay_hash_was_journaled_neither_loses_nor_doubles(emu: Any, signer: LocalAccount,
                                                                             tmp_path: Path, expired: bool) -> None:
    """The batch journals the signed bytes under their own hash, sends them, and only then learns the relay's
    hash. A crash in between: the next run re-sends the bytes and the relay refuses them (BAD NONCE: already
    executed; or expired); either way each order is found on chain, reported once."""
    from peru_compras.batch import Journal, prepare, read_manifest

    home, address, manifest = deployed_with_manifest(emu, signer, tmp_path, 3, "OC-RELAY-CRASH")
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
    assert emu.relayed == relayed  # the relay refused the re-sent bytes (BAD NONCE, or expired); nothing else sent
    assert registry.total_supply() == 3


def test_the_relays_own_allowance_check_is_named_and_retried_within_a_bound(emu: Any, registry: Registry) -> None:
    """The relay adds up what it asks for in a block (len x 105 + 300,000 + gas each) and refuses past the
    node's allowance: -32000 "transaction gas limit exceeds block gas limit", before anything is sent."""
    order = fresh_order("allowance")
    relayed = emu.relayed
    emu.set_allowance(200_000)  # under what one registration asks (~430,000)
    try:
        with pytest.raises(lacnet.HubRefused, match="exceeds block gas limit.*allowance") as caught:
            registry.register(order, sha256(b"allowance " + order.order_number.encode()))
    finally:
        emu.set_allowance(emu.allowance)
    assert caught.value.code == lacnet.NOT_ENOUGH_GAS and f"tried {NOT_ENOUGH_GAS_ATTEMPTS} times" in str(caught.value)
    assert emu.relayed == relayed and not registry.state(order.token_id).registered
    registry.register(order, sha256(b"allowance " + order.order_number.encode()))  # room again: it goes through
    assert registry.state(order.token_id).registered


@pytest.mark.parametrize("data_length", range(64, 96))
def test_the_emulated_account_rules_find_the_suffix_behind_any_padding(data_length: int) -> None:
    """AccountRules' arithmetic (where the node address and expiration sit in the node's hub call) for
    signing data of every length modulo 32, and each rule it applies to the node's transaction."""
    import rlp as rlp_codec

    from .lacnet.emulator import rules_allow

    node, expiration = "0x" + "ab" * 20, 2_000_000_000
    data = b"\x5c" * (data_length - 64) + abi_encode(["address", "uint256"], [node, expiration])
    signing = rlp_codec.encode([b"\x07", b"", b"\x01\x00", b"\x11" * 20, b"", data])
    gas = lacnet.relay_gas(data, 90_000)

    def call(gas_argument: int) -> bytes:
        return lacnet.RELAY_META_TX + abi_encode(["uint256", "bytes", "uint8", "bytes32", "bytes32"],
                                                 [gas_argument, signing, 27, b"\x01" * 32, b"\x02" * 32])

    checksummed = to_checksum(node)
    assert rules_allow(checksummed, 0, gas, call(gas), expiration)
    assert not rules_allow(checksummed, 1, gas, call(gas), expiration)  # gas price above 0
    assert not rules_allow(checksummed, 0, gas, call(gas + 1), expiration)  # gas != the gasLimit argument
    assert not rules_allow(checksummed, 0, gas, call(gas), expiration + 1)  # expired
    assert not rules_allow(to_checksum("0x" + "cd" * 20), 0, gas, call(gas), expiration)  # another node
    short = len(call(0)) * 105 + 300_000 - 1
    assert not rules_allow(checksummed, 0, short, call(short), expiration)  # under len(payload) x 105 + 300,000
