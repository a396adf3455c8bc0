"""LACNet's open-standards model (LACNET.md section 2) through the emulated PermissionedMetaTxHub on Anvil
(tests/lacnet/metatx.py), with the command line as an operator runs it:

``--network lacnet-protestnet --lacnet-model metatx --rpc <node> --metatx-hub <hub>`` with the registrar's key
in PERU_COMPRAS_PRIVATE_KEY and the relayer's in PERU_COMPRAS_RELAYER_PRIVATE_KEY.

The portability flow (deploy through the hub, register, register-batch, show, verify, supersede, annul, roles,
export-ocds, the page), a third-party check of the Forward signature with ethers, the emulated hub's checks,
bad settings (each one line, nothing sent), and a batch killed with SIGKILL and resumed.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from eth_abi.abi import decode as abi_decode
from eth_account import Account
from eth_account.signers.local import LocalAccount

from peru_compras.chain.client import ORDER_REGISTERED, REGISTER, Registry
from peru_compras.chain.contract import selector
from peru_compras.chain.metatx import (
    CONTRACT_DEPLOYED,
    EXECUTE,
    MetaTxTransactor,
    decode_execute,
    execute_calldata,
    forwarded_calldata,
)
from peru_compras.chain.networks import network
from peru_compras.chain.rpc import Rpc, RpcError
from peru_compras.errors import ConfigurationError, NotAuthorized, RelayRefused
from peru_compras.hashing import sha256
from peru_compras.order import Order, parse_order
from peru_compras.render import render_order
from peru_compras.web.app import PageSettings, create_app

from .conftest import CLI, ROOT, reference_order, run_cli, write_json
from .lacnet.metatx import CHAIN_ID, MetaTxEmulator
from .test_batch import make_orders, write_jsonl
from .test_web import Client

NODE_BIN = "node"
_count = iter(range(10**6))


def one_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    assert len(lines) == 1, text
    return lines[0]


def error_line(text: str) -> str:
    """The one error line of a batch's stderr (beside it only the progress bar, which says 'registering')."""
    errors = [line for line in text.splitlines() if line.startswith("error:")]
    others = [line for line in text.splitlines() if line.strip() and not line.startswith(("error:", "registering"))]
    assert len(errors) == 1 and not others, text
    return errors[0]


def lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def emu() -> Iterator[MetaTxEmulator]:
    with MetaTxEmulator() as emulator:
        yield emulator


@dataclass
class Operator:
    """An operator onboarded to the metatx model: a registrar key, a relayer LNet allows, a folder."""

    emu: MetaTxEmulator
    home: Path
    signer: LocalAccount
    relayer: LocalAccount
    registry: Registry | None = None
    env: dict[str, str] = field(default_factory=dict)

    def flags(self, **changes: str) -> list[str]:
        values = {"--network": "lacnet-protestnet", "--lacnet-model": "metatx", "--rpc": self.emu.url,
                  "--metatx-hub": self.emu.hub, **{"--" + k.replace("_", "-"): v for k, v in changes.items()}}
        return [item for pair in values.items() for item in pair]

    def cli(self, *args: str, signer: LocalAccount | None = None, relayer: LocalAccount | None = None,
            flags: list[str] | None = None, timeout: float = 120,
            env_changes: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        env = dict(self.env, PERU_COMPRAS_PRIVATE_KEY=(signer or self.signer).key.hex(),
                   PERU_COMPRAS_RELAYER_PRIVATE_KEY=(relayer or self.relayer).key.hex())
        if env_changes:
            env.update(env_changes)
            env = {k: v for k, v in env.items() if v}
        done = run_cli(["--home", str(self.home), *(self.flags() if flags is None else flags), *args],
                       env=env, cwd=self.home.parent, timeout=timeout)
        for key in (self.signer.key, self.relayer.key, (relayer or self.relayer).key):  # never printed
            assert key.hex().removeprefix("0x") not in done.stdout + done.stderr
        return done

    def rpc(self) -> Rpc:
        return Rpc(self.emu.url)

    def relayer_tx_count(self, relayer: LocalAccount | None = None) -> int:
        return int(self.rpc().call("eth_getTransactionCount", [(relayer or self.relayer).address, "latest"]), 16)


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PERU_COMPRAS_")}
    env["PERU_COMPRAS_BASE_URL"] = "https://oc.example.pe"
    return env


def onboard(emu: MetaTxEmulator, folder: Path, *, deploy: bool = True) -> Operator:
    folder.mkdir(parents=True, exist_ok=True)
    operator = Operator(emu, folder / "home", Account.create(), emu.new_relayer(), env=clean_env())
    if deploy:
        result = operator.cli("deploy", "--json")
        assert result.returncode == 0, result.stderr
        output = json.loads(result.stdout)
        operator.registry = Registry(operator.rpc(), output["registry"], from_block=output["block_number"])
        operator.deploy_output = output  # type: ignore[attr-defined]
    return operator


@pytest.fixture(scope="module")
def op(emu: MetaTxEmulator, tmp_path_factory: pytest.TempPathFactory) -> Operator:
    return onboard(emu, tmp_path_factory.mktemp("metatx"))


def order_files(folder: Path, number: str) -> tuple[Path, Path, dict[str, Any]]:
    record = reference_order(order_number=number)
    folder.mkdir(parents=True, exist_ok=True)
    pdf = folder / f"{number}.pdf"
    pdf.write_bytes(render_order(parse_order(record)))
    return write_json(folder / f"{number}.json", record), pdf, record


def assert_hub_call(op: Operator, tx_hash: str, *, relayer: LocalAccount | None = None) -> bytes:
    """The transaction is the relayer's call of the hub's execute; returns the registry calldata in it."""
    tx = op.rpc().call("eth_getTransactionByHash", [tx_hash])
    assert tx["to"].lower() == op.emu.hub.lower()
    assert tx["from"].lower() == (relayer or op.relayer).address.lower()
    assert int(tx["gasPrice"], 16) == 0 and int(tx.get("type", "0x0"), 16) == 0
    data = bytes.fromhex(tx["input"][2:])
    assert data[:4] == EXECUTE == bytes.fromhex("3e6c5283")
    inner = forwarded_calldata(data)
    assert inner is not None
    return inner


# --------------------------------------------------------------------------------------------------
# The portability flow


def test_deploy_goes_through_the_hub(op: Operator) -> None:
    output = op.deploy_output  # type: ignore[attr-defined]
    assert output["chain_id"] == CHAIN_ID
    receipt = op.rpc().call("eth_getTransactionReceipt", [output["tx_hash"]])
    deployed = [log for log in receipt["logs"] if log["topics"][0] == CONTRACT_DEPLOYED]
    assert len(deployed) == 1 and deployed[0]["address"].lower() == op.emu.hub.lower()
    assert int(deployed[0]["topics"][1], 16) == int(op.signer.address, 16)  # the hub names the registrar
    (address, _data_hash) = abi_decode(["address", "bytes32"], bytes.fromhex(deployed[0]["data"][2:]))
    assert address.lower() == output["registry"].lower()
    tx = op.rpc().call("eth_getTransactionByHash", [output["tx_hash"]])
    forward, _code, _signature = decode_execute(bytes.fromhex(tx["input"][2:])) or (None, b"", b"")
    assert forward is not None and int(forward.to, 16) == 0 and forward.sender == op.signer.address
    # the registry trusts this hub (ERC-2771) and gives every role to the registrar, not to the hub
    query = {"to": output["registry"], "data": "0x" + selector("trustedForwarder()").hex()}
    trusted = op.rpc().call("eth_call", [query, "latest"])
    assert int(trusted, 16) == int(op.emu.hub, 16)
    roles = op.cli("roles", "list", "--json")
    assert roles.returncode == 0, roles.stderr
    assert all(members == [op.signer.address] for members in json.loads(roles.stdout).values())


def test_register_show_verify_supersede_annul(op: Operator, tmp_path: Path) -> None:
    assert op.registry is not None
    order_file, pdf, record = order_files(tmp_path, f"OC-MTX-{next(_count)}")
    stamped = tmp_path / "sellada.pdf"
    registered = op.cli("register", str(order_file), str(pdf), "--out", str(stamped), "--json")
    assert registered.returncode == 0, registered.stderr
    data = json.loads(registered.stdout)
    assert assert_hub_call(op, data["tx_hash"])[:4] == REGISTER

    on_chain = op.registry.read(int(data["token_id"], 16))  # a plain reader decodes the hub call
    assert on_chain.registrar == op.signer.address  # ERC-2771: the registrar, not the hub or the relayer
    assert on_chain.order == parse_order(record) and on_chain.tx_hash == data["tx_hash"]
    shown = op.cli("show", f"20131370998/{record['order_number']}", "--json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["registrar"] == op.signer.address
    verified = op.cli("verify", str(stamped), "--json")
    assert (verified.returncode, json.loads(verified.stdout)["status"]) == (0, "authentic")

    fixed_file, fixed_pdf, fixed = order_files(tmp_path, record["order_number"] + "-R1")
    superseding = op.cli("register", str(fixed_file), str(fixed_pdf), "--supersedes", data["token_id"], "--json")
    assert superseding.returncode == 0, superseding.stderr
    replacement = json.loads(superseding.stdout)
    assert replacement["supersedes"] == data["token_id"]
    assert op.registry.state(int(data["token_id"], 16)).status == "superseded"
    assert op.registry.read(int(replacement["token_id"], 16)).order == parse_order(fixed)

    annulled = op.cli("annul", replacement["token_id"], "--reason", "Proveedor inhabilitado", "--json")
    assert annulled.returncode == 0, annulled.stderr
    assert op.registry.read(int(replacement["token_id"], 16)).annul_reason == "Proveedor inhabilitado"


def test_register_batch_then_again(op: Operator, tmp_path: Path) -> None:
    assert op.registry is not None
    rows = make_orders(tmp_path / "m", 5, prefix=f"OC-MTXB-{next(_count)}")
    manifest = write_jsonl(tmp_path / "m" / "manifest.jsonl", rows)
    first = op.cli("register-batch", str(manifest), "--batch-size", "2", "--no-stamp", "--json")
    assert first.returncode == 0, first.stderr
    out = lines(first.stdout)
    assert out[-1] == {"summary": {"registered": 5, "already_registered": 0, "failed": 0}}
    hashes = {line["tx_hash"] for line in out[:-1]}
    assert len(hashes) == 3
    for tx_hash in hashes:  # the journal holds the relayer's transaction, not the Forward's digest
        assert_hub_call(op, str(tx_hash))
    again = op.cli("register-batch", str(manifest), "--batch-size", "2", "--no-stamp", "--json")
    assert again.returncode == 0, again.stderr
    assert lines(again.stdout)[-1] == {"summary": {"registered": 0, "already_registered": 5, "failed": 0}}
    for row in rows:
        token_id = parse_order({k: v for k, v in row.items() if k != "pdf"}).token_id
        assert op.registry.read(token_id).registrar == op.signer.address


def test_roles_grant_and_revoke(op: Operator, tmp_path: Path) -> None:
    assert op.registry is not None
    clerk: LocalAccount = Account.create()
    assert op.cli("roles", "grant", "registrar", clerk.address, "--json").returncode == 0
    order_file, pdf, _ = order_files(tmp_path, f"OC-MTXR-{next(_count)}")
    by_clerk = op.cli("register", str(order_file), str(pdf), "--json", signer=clerk)
    assert by_clerk.returncode == 0, by_clerk.stderr
    assert op.registry.read(int(json.loads(by_clerk.stdout)["token_id"], 16)).registrar == clerk.address

    assert op.cli("roles", "revoke", "registrar", clerk.address).returncode == 0
    before = op.relayer_tx_count()
    second, pdf2, _ = order_files(tmp_path, f"OC-MTXR-{next(_count)}")
    refused = op.cli("register", str(second), str(pdf2), "--json", signer=clerk)
    assert refused.returncode == 1
    line = one_line(refused.stderr).lower()
    assert f"account {clerk.address.lower()} lacks the registrar role" in line and "roles grant registrar" in line
    assert op.relayer_tx_count() == before  # refused at the estimate: the relayer sent nothing


def test_export_ocds_and_the_page_read_metatx_records(op: Operator, tmp_path: Path) -> None:
    assert op.registry is not None
    order_file, pdf, record = order_files(tmp_path, f"OC-MTXP-{next(_count)}")
    registered = op.cli("register", str(order_file), str(pdf), "--json")
    assert registered.returncode == 0, registered.stderr
    token_id = json.loads(registered.stdout)["token_id"]

    exported = op.cli("export-ocds", "--out", str(tmp_path / "ocds.json"), "--json")
    assert exported.returncode == 0, exported.stderr
    package = json.loads((tmp_path / "ocds.json").read_text())
    assert any(record["order_number"] in json.dumps(release) for release in package["releases"])
    assert json.loads(exported.stdout)["releases"] == op.registry.total_supply()

    registry = op.registry
    order = parse_order(record)
    app = create_app(lambda: Registry(Rpc(op.emu.url), registry.address, from_block=registry.from_block),
                     PageSettings(base_url="https://oc.example.pe", sync_interval=0))

    web = Client(app)
    page, api = web.get(order.verify_path), web.get(f"/api/orders/{token_id}")
    web.close()
    assert page.status_code == 200 and record["order_number"] in page.text
    assert api.status_code == 200
    assert op.signer.address.lower() in api.text.lower()  # the page names the registrar, read through the hub


# --------------------------------------------------------------------------------------------------
# The Forward, checked by someone else's code, and the hub's checks


def node_verify(chain_id: int, hub: str, envelope: bytes) -> dict[str, Any]:
    script = ROOT / "tests" / "js" / "metatx-verify.mjs"
    done = subprocess.run([NODE_BIN, str(script)], input=json.dumps({"chainId": chain_id, "hub": hub,
                                                                     "execute": "0x" + envelope.hex()}),
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 0, done.stderr
    out: dict[str, Any] = json.loads(done.stdout)
    return out


def library_transactor(emu: MetaTxEmulator, signer: LocalAccount, relayer: LocalAccount, **changes: Any
                       ) -> MetaTxTransactor:
    profile = replace(network("lacnet-protestnet"), metatx_hub=emu.hub, **changes)
    return MetaTxTransactor(Rpc(emu.url), signer, relayer, profile)


class Signed(NamedTuple):
    transactor: MetaTxTransactor
    order: Order
    data: bytes
    envelope: bytes
    digest: bytes


def signed_order(op: Operator, prefix: str, document: bytes) -> Signed:
    """A new order's registration (`document` its PDF's bytes), signed by the operator's signer as a Forward
    for its relayer through the library's transactor, not sent."""
    assert op.registry is not None
    transactor = library_transactor(op.emu, op.signer, op.relayer)
    order = parse_order(reference_order(order_number=f"{prefix}-{next(_count)}"))
    data = Registry.batch_calldata([order.encode_entry(sha256(document))])
    envelope, digest = transactor.sign(op.registry.address, data, 0, transactor.take_nonce())
    return Signed(transactor, order, data, envelope, digest)


def test_forward_signature_verifies_with_ethers(op: Operator) -> None:
    assert op.registry is not None
    transactor, _, _, envelope, digest = signed_order(op, "OC-MTXE", b"ethers")

    checked = node_verify(CHAIN_ID, op.emu.hub, envelope)
    assert checked["selector"] == "0x3e6c5283"
    assert checked["recovered"] == op.signer.address
    assert checked["digest"] == digest
    assert checked["dataHashMatches"] is True
    assert checked["forward"]["caller"] == op.relayer.address and checked["forward"]["to"] == op.registry.address
    # the same Forward under another chain id is not the registrar's
    assert node_verify(CHAIN_ID + 1, op.emu.hub, envelope)["recovered"] != op.signer.address
    # and the emulated hub (OpenZeppelin's EIP712 and ECDSA) accepts it: sent as signed, it runs
    before = op.registry.total_supply()
    tx_hash = transactor.rpc.call("eth_sendRawTransaction", ["0x" + envelope.hex()])
    transactor.wait(tx_hash, action="register")
    assert op.registry.total_supply() == before + 1


def hub_refusal(op: Operator, envelope: bytes, relayer: LocalAccount | None = None) -> bytes:
    """The revert data of the hub's execute when `relayer` calls it with `envelope`."""
    call = {"from": (relayer or op.relayer).address, "to": op.emu.hub, "data": "0x" + envelope.hex()}
    with pytest.raises(RpcError) as refused:
        op.rpc().call("eth_call", [call, "latest"])
    data = refused.value.revert_data
    assert data is not None
    return data


def test_emulated_hub_checks(op: Operator) -> None:
    assert op.registry is not None
    transactor, _, data, envelope, _ = signed_order(op, "OC-MTXH", b"hub checks")
    forward, call_data, signature = decode_execute(envelope) or (None, b"", b"")
    assert forward is not None

    def error(name: str) -> bytes:
        return selector(name)

    stranger: LocalAccount = Account.create()
    assert hub_refusal(op, envelope, stranger)[:4] == error("HubCallerNotAllowed(address)")
    other_relayer = op.emu.new_relayer()
    assert hub_refusal(op, envelope, other_relayer)[:4] == error("HubWrongCaller(address,address)")
    expired = transactor.sign(op.registry.address, data, 0, transactor.take_nonce(), expiration=int(time.time()) - 5)
    assert hub_refusal(op, expired[0])[:4] == error("HubExpired(uint256,uint256)")
    swapped = execute_calldata(forward, call_data + b"\0", signature)
    assert hub_refusal(op, swapped)[:4] == error("HubDataHashMismatch()")
    forged = execute_calldata(replace(forward, sender=stranger.address), call_data, signature)
    assert hub_refusal(op, forged)[:4] == error("HubInvalidSignature(address,address)")

    tx_hash = transactor.rpc.call("eth_sendRawTransaction", ["0x" + envelope.hex()])
    transactor.wait(tx_hash, action="register")
    assert transactor.is_nonce_used(forward)
    assert hub_refusal(op, envelope)[:4] == error("HubNonceUsed(address,uint32,uint256)")
    # nor one signed for another relayer
    with pytest.raises(RpcError, match=f"names relayer {op.relayer.address}, not {other_relayer.address}"):
        library_transactor(op.emu, op.signer, other_relayer).rpc.call("eth_sendRawTransaction", ["0x" + envelope.hex()])
    # the client does not send a used Forward again: it says it ran, and the chain settles its orders
    with pytest.raises(RpcError, match="already used at the hub"):
        transactor.rpc.call("eth_sendRawTransaction", ["0x" + envelope.hex()])


def test_a_dropped_relayer_transaction_is_resent_as_signed(op: Operator) -> None:
    """The relayer's transaction is lost from the pool; the journaled Forward goes again, byte for byte, in
    a relayer transaction signed anew, and runs once."""
    assert op.registry is not None
    rpc = op.rpc()
    transactor, order, _, envelope, _ = signed_order(op, "OC-MTXD", b"dropped")
    rpc.call("evm_setAutomine", [False])
    try:
        first = transactor.rpc.call("eth_sendRawTransaction", ["0x" + envelope.hex()])
        rpc.call("anvil_dropTransaction", [first])
        transactor.resync_nonce()
        second = transactor.rpc.call("eth_sendRawTransaction", ["0x" + envelope.hex()])
        rpc.call("evm_mine")
    finally:
        rpc.call("evm_setAutomine", [True])
    assert transactor.wait(second, action="register").block_number > 0
    assert bytes.fromhex(rpc.call("eth_getTransactionByHash", [second])["input"][2:]) == envelope
    assert op.registry.state(order.token_id).registered


# --------------------------------------------------------------------------------------------------
# Bad settings: one line naming the value and the next step; nothing sent; the journal stays retryable


def test_wrong_hub_address(op: Operator, tmp_path: Path) -> None:
    assert op.registry is not None
    order_file, pdf, _ = order_files(tmp_path, f"OC-MTXW-{next(_count)}")
    before, supply = op.relayer_tx_count(), op.registry.total_supply()
    nowhere = Account.create().address
    absent = op.cli("register", str(order_file), str(pdf), flags=op.flags(metatx_hub=nowhere))
    assert absent.returncode == 2
    line = one_line(absent.stderr)
    assert f"no contract at PermissionedMetaTxHub {nowhere}" in line and "--metatx-hub" in line
    not_a_hub = op.cli("register", str(order_file), str(pdf), flags=op.flags(metatx_hub=op.registry.address))
    assert not_a_hub.returncode == 2
    line = one_line(not_a_hub.stderr)
    assert f"contract {op.registry.address} is not a PermissionedMetaTxHub" in line
    assert (op.relayer_tx_count(), op.registry.total_supply()) == (before, supply)


def test_chain_id_not_the_profiles(op: Operator, tmp_path: Path) -> None:
    assert op.registry is not None
    order_file, pdf, _ = order_files(tmp_path, f"OC-MTXC-{next(_count)}")
    before = op.relayer_tx_count()
    wrong = op.cli("register", str(order_file), str(pdf), flags=op.flags(network="lacnet-mainnet"))
    assert wrong.returncode == 2
    line = one_line(wrong.stderr)
    assert f"chain id {CHAIN_ID}, but profile lacnet-mainnet expects 648541" in line and "--network" in line
    assert op.relayer_tx_count() == before


def test_settings_name_the_missing_relayer_and_the_model() -> None:
    from peru_compras.settings import Settings, load_settings
    from peru_compras.workspace import Workspace

    settings = load_settings({"network": "lacnet-protestnet", "lacnet_model": "metatx"})
    assert settings.network.metatx_hub == "0x9a49A9e7b5b07CDd6218624687D3C9FD30e853Bd"
    assert load_settings({"network": "lacnet-mainnet"}).network.metatx_hub == (
        "0x1B5c82C4093D2422699255f59f3B8A33c4a37773")
    with pytest.raises(ConfigurationError, match="needs a LACNet profile"):
        load_settings({"network": "local", "lacnet_model": "metatx"})
    with pytest.raises(ConfigurationError, match="'gsn' is not one of relay, metatx"):
        load_settings({"network": "lacnet-protestnet", "lacnet_model": "gsn"})
    with pytest.raises(ConfigurationError, match="PermissionedMetaTxHub '0x12' is not an address"):
        load_settings({"network": "lacnet-protestnet", "metatx_hub": "0x12"})
    env = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("PERU_COMPRAS_RELAYER")}
    try:
        os.environ["PERU_COMPRAS_PRIVATE_KEY"] = Account.create().key.hex()
        with pytest.raises(ConfigurationError, match="needs the relayer's key"):
            _ = Workspace(replace(settings, rpc="http://127.0.0.1:9")).transactor
        os.environ["PERU_COMPRAS_RELAYER_PRIVATE_KEY"] = "0x" + "ab" * 31
        with pytest.raises(ConfigurationError, match="PERU_COMPRAS_RELAYER_PRIVATE_KEY is not a private key") as bad:
            _ = Workspace(replace(settings, rpc="http://127.0.0.1:9")).transactor
        assert "ab" * 31 not in str(bad.value) + str(bad.value.hint)
    finally:
        os.environ.pop("PERU_COMPRAS_PRIVATE_KEY", None)
        os.environ.pop("PERU_COMPRAS_RELAYER_PRIVATE_KEY", None)
        os.environ.update(env)
    assert isinstance(settings, Settings)


def test_relayer_not_allowed_keeps_the_batch_retryable(op: Operator, tmp_path: Path) -> None:
    assert op.registry is not None
    outsider: LocalAccount = Account.create()  # LNet has not permissioned it at the hub
    rows = make_orders(tmp_path / "m", 4, prefix=f"OC-MTXN-{next(_count)}")
    manifest = write_jsonl(tmp_path / "m" / "manifest.jsonl", rows)
    supply = op.registry.total_supply()
    refused = op.cli("register-batch", str(manifest), "--no-stamp", "--batch-size", "2", "--json",
                     relayer=outsider)
    assert refused.returncode == 1
    line = error_line(refused.stderr)
    assert f"does not allow relayer {outsider.address}" in line and "LNet" in line
    assert op.registry.total_supply() == supply and op.relayer_tx_count(outsider) == 0
    op.emu.allow(outsider.address)  # LNet permissions it: the same command now registers every order
    again = op.cli("register-batch", str(manifest), "--no-stamp", "--batch-size", "2", "--json", relayer=outsider)
    assert again.returncode == 0, again.stderr
    assert lines(again.stdout)[-1] == {"summary": {"registered": 4, "already_registered": 0, "failed": 0}}


def test_registrar_without_the_role(op: Operator, tmp_path: Path) -> None:
    assert op.registry is not None
    stranger: LocalAccount = Account.create()
    rows = make_orders(tmp_path / "m", 3, prefix=f"OC-MTXS-{next(_count)}")
    manifest = write_jsonl(tmp_path / "m" / "manifest.jsonl", rows)
    before, supply = op.relayer_tx_count(), op.registry.total_supply()
    refused = op.cli("register-batch", str(manifest), "--no-stamp", "--json", signer=stranger)
    assert refused.returncode != 0
    assert f"{stranger.address.lower()} lacks the registrar role" in error_line(refused.stderr).lower()
    assert (op.relayer_tx_count(), op.registry.total_supply()) == (before, supply)
    # a Forward signed by one key but claiming another sender is the hub's to refuse, named by the client
    transactor = library_transactor(op.emu, stranger, op.relayer)
    envelope, _ = transactor.sign(op.registry.address, REGISTER, 0, transactor.take_nonce())
    forward, call_data, signature = decode_execute(envelope) or (None, b"", b"")
    assert forward is not None
    forged = execute_calldata(replace(forward, sender=op.signer.address), call_data, signature)
    with pytest.raises(RpcError) as raw:
        transactor.rpc.call("eth_sendRawTransaction", ["0x" + forged.hex()])
    named = transactor.send_refusal(raw.value, "register an order")
    assert isinstance(named, RelayRefused) and f"PermissionedMetaTxHub {op.emu.hub} refused" in str(named)
    assert op.relayer_tx_count() == before


def test_expired_deadline_keeps_the_batch_retryable(tmp_path: Path) -> None:
    """This machine's clock is an hour behind the chain's: every Forward's deadline has passed when it arrives.
    The run stops with one line naming both times; once the clock agrees, the same command registers all."""
    with MetaTxEmulator() as emu:
        operator = onboard(emu, tmp_path / "clock")
        assert operator.registry is not None
        rows = make_orders(tmp_path / "m", 3, prefix="OC-MTXT")
        manifest = write_jsonl(tmp_path / "m" / "manifest.jsonl", rows)
        rpc = operator.rpc()
        rpc.call("evm_increaseTime", [3600])
        rpc.call("evm_mine")
        refused = operator.cli("register-batch", str(manifest), "--no-stamp", "--json")
        assert refused.returncode == 1
        line = error_line(refused.stderr)
        assert "deadline" in line and "before the chain's time" in line and "clock" in line
        assert operator.registry.total_supply() == 0
        operator.env["PERU_COMPRAS_EXPIRATION_SECONDS"] = "7200"  # stands in for a clock set right
        again = operator.cli("register-batch", str(manifest), "--no-stamp", "--json")
        assert again.returncode == 0, again.stderr
        assert lines(again.stdout)[-1] == {"summary": {"registered": 3, "already_registered": 0, "failed": 0}}


def test_relayer_keystore(op: Operator, tmp_path: Path) -> None:
    assert op.registry is not None
    keystore = tmp_path / "relayer.json"
    keystore.write_text(json.dumps(Account.encrypt(op.relayer.key, "clave del relayer")))
    order_file, pdf, _ = order_files(tmp_path, f"OC-MTXK-{next(_count)}")
    flags = [*op.flags(), "--relayer-keystore", str(keystore)]
    wrong = op.cli("register", str(order_file), str(pdf), flags=flags,
                   env_changes={"PERU_COMPRAS_RELAYER_PRIVATE_KEY": "", "PERU_COMPRAS_RELAYER_KEYSTORE_PASSWORD": "x"})
    assert wrong.returncode == 2
    line = one_line(wrong.stderr)
    assert f"cannot decrypt keystore '{keystore}'" in line and "PERU_COMPRAS_RELAYER_KEYSTORE_PASSWORD" in line
    before = op.relayer_tx_count()
    done = op.cli("register", str(order_file), str(pdf), "--json", flags=flags,
                  env_changes={"PERU_COMPRAS_RELAYER_PRIVATE_KEY": "",
                               "PERU_COMPRAS_RELAYER_KEYSTORE_PASSWORD": "clave del relayer"})
    assert done.returncode == 0, done.stderr
    assert op.relayer_tx_count() == before + 1  # the keystore's relayer sent it
    assert_hub_call(op, json.loads(done.stdout)["tx_hash"])


def test_status_one_alone_is_not_success(op: Operator) -> None:
    """A relayer transaction that succeeded without the hub using the Forward's nonce registered nothing
    (the hub's source is unpublished: it might swallow a failure), so the client says so."""
    assert op.registry is not None
    transactor = library_transactor(op.emu, op.signer, op.relayer)
    envelope, _ = transactor.sign(op.registry.address, REGISTER, 0, transactor.take_nonce())
    forward = (decode_execute(envelope) or (None,))[0]
    assert forward is not None
    # any mined transaction of the relayer's with status 1 will do as the receipt: the Forward never ran
    other = library_transactor(op.emu, op.signer, op.relayer)
    order = parse_order(reference_order(order_number=f"OC-MTXU-{next(_count)}"))
    mined = other.transact(op.registry.address, Registry.batch_calldata([order.encode_entry(sha256(b"u"))]),
                           action="register")
    receipt = op.rpc().call("eth_getTransactionReceipt", [mined.tx_hash])
    transactor._sent[mined.tx_hash.lower()] = forward
    with pytest.raises(RelayRefused, match="did not run the Forward"):
        transactor.read_receipt(mined.tx_hash, receipt, action="register")


def test_library_errors_are_typed(op: Operator) -> None:
    with pytest.raises(NotAuthorized, match="does not allow relayer"):
        library_transactor(op.emu, op.signer, Account.create()).take_nonce()


# --------------------------------------------------------------------------------------------------
# A batch killed at random moments, then resumed


@pytest.mark.slow
def test_sigkill_then_resume_through_the_metatx_hub(tmp_path: Path) -> None:
    with MetaTxEmulator() as emu:
        operator = onboard(emu, tmp_path / "kill")
        registry = operator.registry
        assert registry is not None
        folder = tmp_path / "k"
        rows = make_orders(folder, 1200, prefix="OC-MTXK")
        manifest = write_jsonl(folder / "manifest.jsonl", rows)
        env = dict(operator.env, PERU_COMPRAS_PRIVATE_KEY=operator.signer.key.hex(),
                   PERU_COMPRAS_RELAYER_PRIVATE_KEY=operator.relayer.key.hex())
        command = [*CLI, "--home", str(operator.home), *operator.flags(), "register-batch", str(manifest), "--json",
                   "--no-stamp", "--batch-size", "50"]
        rng = random.Random(20261201)
        on_chain = [0]
        for attempt in range(3):
            with (tmp_path / f"{attempt}.out").open("w") as out, (tmp_path / f"{attempt}.err").open("w") as err:
                process = subprocess.Popen(command, env=env, stdout=out, stderr=err, text=True,
                                           start_new_session=True)
            if attempt > 0:
                deadline = time.monotonic() + 60
                while (registry.total_supply() == on_chain[-1] and process.poll() is None
                       and time.monotonic() < deadline):
                    time.sleep(0.02)
            time.sleep(rng.uniform(0.0, 0.25) if attempt > 0 else rng.uniform(0.5, 1.5))
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=60)
            assert process.returncode == -signal.SIGKILL
            on_chain.append(registry.total_supply())
        assert on_chain == sorted(on_chain) and on_chain[-1] < 1200 and len(set(on_chain)) >= 2, on_chain
        final = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
        assert final.returncode == 0, final.stderr
        summary = lines(final.stdout)[-1]["summary"]
        assert summary["failed"] == 0 and summary["registered"] + summary["already_registered"] == 1200
        assert registry.total_supply() == 1200
        logs = Rpc(emu.url).call("eth_getLogs", [{"address": registry.address, "fromBlock": "0x0", "toBlock": "latest",
                                                  "topics": [ORDER_REGISTERED]}])
        assert len(logs) == 1200  # each order once
        for row in rows[:: 97]:
            state = registry.state(parse_order({k: v for k, v in row.items() if k != "pdf"}).token_id)
            assert state.document_hash == sha256((folder / str(row["pdf"])).read_bytes())
