"""The integration suite on three more nodes, through the command line as users run it:

- ``lacnet``: LACNet's gas model through the relay emulator (tests/lacnet/emulator.py: Anvil on Berlin, chain
  id 648540, gas price 0, an emulated RelayHub and trusted forwarder, a JSON-RPC front standing in for the
  writer node's relay), with ``--network lacnet-protestnet --rpc <front> --node-address <node>
  --trusted-forwarder <forwarder>``;
- ``metatx``: LACNet's ERC-2771 meta-transaction model through the emulated PermissionedMetaTxHub
  (tests/lacnet/metatx.py: Anvil on LACNet's settings, one emulator for the module), with ``--network
  lacnet-protestnet --lacnet-model metatx --rpc <node> --metatx-hub <hub>`` and a relayer the hub allows in
  PERU_COMPRAS_RELAYER_PRIVATE_KEY;
- ``hardhat``: Hardhat 2's node from npm, a second EVM implementation, with the ``local`` profile.

Deploy, register, show, verify, verify --fetch, supersede, annul, register-batch, roles, export-ocds and the
verification page, each checking that the registry records the signer as registrar (through a hub: not the
hub, the node or the relayer), that every write went through the model's hub (:func:`assert_through_hub`:
the relay's 5-argument relayMetaTx / deployMetaTx from the writer node, or execute from the relayer) and that
what went through reads back (the hub call decoded). No output carries a private key.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from eth_abi.abi import decode as abi_decode
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils.crypto import keccak

from peru_compras.chain import lacnet
from peru_compras.chain.client import Registry
from peru_compras.chain.metatx import EXECUTE, decode_execute, forwarded_calldata
from peru_compras.chain.node import free_port, set_balance
from peru_compras.chain.rpc import Rpc
from peru_compras.order import parse_order
from peru_compras.render import render_order
from peru_compras.web.app import PageSettings, create_app

from .conftest import reference_order, run_cli, write_json
from .lacnet.metatx import CHAIN_ID as METATX_CHAIN_ID
from .lacnet.metatx import MetaTxEmulator
from .test_batch import make_orders, write_jsonl
from .test_web import Client

NODES = ["lacnet", "metatx", "hardhat"]


@dataclass(frozen=True)
class HubModel:
    """How writes reach the registry through one of LACNet's models: the hub the transactions go to, who
    sends them, the hub function of a call and of a deployment, and how our calldata is read back out."""

    hub: str
    sender: str  # the writer node (relay) or the relayer account (metatx)
    call: bytes
    deploy: bytes
    unwrap: Callable[[bytes], bytes | None]
    signer_of: Callable[[bytes], str]


@dataclass
class Target:
    """A node under test and the settings the CLI needs for it."""

    name: str
    rpc: Rpc
    flags: list[str]
    chain_id: int
    permit: Callable[[str], None]
    model: HubModel | None = None  # None: transactions go straight to the node
    env: dict[str, str] = field(default_factory=dict)  # settings beside the signer's key (the relayer's)

    def new_account(self) -> LocalAccount:
        account: LocalAccount = Account.create()
        self.permit(account.address)
        return account


@pytest.fixture(scope="module")
def metatx_emulator() -> Iterator[MetaTxEmulator]:
    with MetaTxEmulator() as emulator:
        yield emulator


@pytest.fixture(scope="module", params=NODES)
def target(request: pytest.FixtureRequest) -> Target:
    if request.param == "lacnet":
        emulator = request.getfixturevalue("lacnet_emulator")
        return Target("lacnet", Rpc(emulator.url),
                      ["--network", "lacnet-protestnet", "--rpc", emulator.url, "--node-address", emulator.node_address,
                       "--trusted-forwarder", emulator.forwarder],
                      648540, emulator.permit,
                      HubModel(emulator.hub, emulator.node_address, lacnet.RELAY_META_TX, lacnet.DEPLOY_META_TX,
                               lacnet.original_calldata, relay_signer))
    if request.param == "metatx":
        hub_emulator: MetaTxEmulator = request.getfixturevalue("metatx_emulator")
        relayer = hub_emulator.new_relayer()  # LNet allows it at the hub; registrars need no gas (price 0)
        return Target("metatx", Rpc(hub_emulator.url),
                      ["--network", "lacnet-protestnet", "--lacnet-model", "metatx", "--rpc", hub_emulator.url,
                       "--metatx-hub", hub_emulator.hub],
                      METATX_CHAIN_ID, lambda _address: None,
                      HubModel(hub_emulator.hub, relayer.address, EXECUTE, EXECUTE, forwarded_calldata,
                               forward_signer),
                      env={"PERU_COMPRAS_RELAYER_PRIVATE_KEY": relayer.key.hex()})
    node = request.getfixturevalue("hardhat_node")
    rpc = Rpc(node.url)
    return Target("hardhat", rpc, ["--rpc", node.url], 31337, lambda a: set_balance(rpc, a, 10**24))


@dataclass
class Deployment:
    target: Target
    home: Path
    signer: LocalAccount
    registry: Registry
    deploy_output: dict[str, Any]
    env: dict[str, str] = field(default_factory=dict)

    def cli(self, *args: str, signer: LocalAccount | None = None, flags: list[str] | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
        key = (signer or self.signer).key.hex()
        env = dict(self.env, PERU_COMPRAS_PRIVATE_KEY=key)
        done = run_cli(["--home", str(self.home), *(self.target.flags if flags is None else flags), *args],
                       env=env, cwd=self.home.parent, timeout=timeout)
        for secret in (key, *self.target.env.values()):  # the keys (the signer's, the relayer's) never printed
            assert secret.removeprefix("0x") not in done.stdout + done.stderr
        return done


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PERU_COMPRAS_")}
    env["PERU_COMPRAS_BASE_URL"] = "https://oc.example.pe"
    return env


def deploy(target: Target, folder: Path) -> Deployment:
    folder.mkdir(parents=True, exist_ok=True)
    signer = target.new_account()
    draft = Deployment(target, folder / "home", signer, None, {}, clean_env() | target.env)  # type: ignore[arg-type]
    result = draft.cli("deploy", "--json")
    assert result.returncode == 0, result.stderr
    output = json.loads(result.stdout)
    assert_through_hub(draft, output["tx_hash"], deploy=True)
    draft.registry = Registry(target.rpc, output["registry"], from_block=output["block_number"])
    draft.deploy_output = output
    return draft


@pytest.fixture(scope="module")
def deployed(target: Target, tmp_path_factory: pytest.TempPathFactory) -> Deployment:
    return deploy(target, tmp_path_factory.mktemp(f"deploy-{target.name}"))


def one_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    assert len(lines) == 1, text
    return lines[0]


def test_deploy_gives_the_signer_every_role(deployed: Deployment) -> None:
    output = deployed.deploy_output
    assert set(output) >= {"registry", "chain_id", "tx_hash", "block_number", "gas_used"}
    assert output["chain_id"] == deployed.target.chain_id
    roles = deployed.cli("roles", "list", "--json")
    assert roles.returncode == 0, roles.stderr
    assert all(deployed.signer.address in members for members in json.loads(roles.stdout).values())
    # (deploy() checked that the deployment went through the hub: the node or relayer sent a hub call)


def test_register_show_verify_annul(deployed: Deployment, tmp_path: Path) -> None:
    record = reference_order(order_number=f"OC-PORT-{deployed.target.name}-1")
    order_file = write_json(tmp_path / "orden.json", record)
    pdf = tmp_path / "orden.pdf"
    pdf.write_bytes(render_order(parse_order(record)))
    stamped = tmp_path / "sellada.pdf"

    registered = deployed.cli("register", str(order_file), str(pdf), "--out", str(stamped), "--json")
    assert registered.returncode == 0, registered.stderr
    data = json.loads(registered.stdout)
    assert_through_hub(deployed, data["tx_hash"])
    token_id = int(data["token_id"], 16)

    on_chain = deployed.registry.read(token_id)
    assert on_chain.registrar == deployed.signer.address  # the contract saw the signer, not the relay hub
    assert on_chain.order == parse_order(record)
    assert on_chain.tx_hash == data["tx_hash"]

    shown = deployed.cli("show", f"20131370998/{record['order_number']}", "--json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["registrar"] == deployed.signer.address
    assert json.loads(shown.stdout)["items"] == record["items"]

    authentic = deployed.cli("verify", str(stamped), "--json")
    assert (authentic.returncode, json.loads(authentic.stdout)["status"]) == (0, "authentic")
    altered = tmp_path / "alterada.pdf"
    altered.write_bytes(stamped.read_bytes().replace(b"%%EOF", b"%%EOF\n% otra"))
    assert json.loads(deployed.cli("verify", str(altered), "--json").stdout)["status"] == "altered"

    annulled = deployed.cli("annul", data["token_id"], "--reason", "Monto mal digitado", "--json")
    assert annulled.returncode == 0, annulled.stderr
    assert_through_hub(deployed, json.loads(annulled.stdout)["tx_hash"])
    after = deployed.cli("verify", str(stamped), "--json")
    assert (after.returncode, json.loads(after.stdout)["status"]) == (1, "annulled")
    assert deployed.registry.read(token_id).annul_reason == "Monto mal digitado"


def test_register_batch_then_again(deployed: Deployment, tmp_path: Path) -> None:
    rows = make_orders(tmp_path / "m", 5, prefix=f"OC-PB-{deployed.target.name}")
    manifest = write_jsonl(tmp_path / "m" / "manifest.jsonl", rows)
    first = deployed.cli("register-batch", str(manifest), "--batch-size", "2", "--no-stamp", "--json")
    assert first.returncode == 0, first.stderr
    out = [json.loads(line) for line in first.stdout.splitlines()]
    assert out[-1] == {"summary": {"registered": 5, "already_registered": 0, "failed": 0}}
    hashes = {line["tx_hash"] for line in out[:-1]}
    assert len(hashes) == 3 and all(deployed.target.rpc.call("eth_getTransactionByHash", [h]) for h in hashes)
    for tx_hash in hashes:  # the journal holds the hub transaction's hash
        assert_through_hub(deployed, tx_hash)
    again = deployed.cli("register-batch", str(manifest), "--batch-size", "2", "--no-stamp", "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout.splitlines()[-1]) == {"summary": {"registered": 0, "already_registered": 5,
                                                                     "failed": 0}}
    for row in rows:
        token_id = parse_order({k: v for k, v in row.items() if k != "pdf"}).token_id
        assert deployed.registry.read(token_id).registrar == deployed.signer.address


def test_roles_grant_and_revoke(deployed: Deployment, tmp_path: Path) -> None:
    clerk = deployed.target.new_account()
    granted = deployed.cli("roles", "grant", "registrar", clerk.address, "--json")
    assert granted.returncode == 0, granted.stderr
    assert_through_hub(deployed, json.loads(granted.stdout)["tx_hash"])

    record = reference_order(order_number=f"OC-ROLE-{deployed.target.name}")
    order_file = write_json(tmp_path / "orden.json", record)
    pdf = tmp_path / "orden.pdf"
    pdf.write_bytes(render_order(parse_order(record)))
    by_clerk = deployed.cli("register", str(order_file), str(pdf), "--json", signer=clerk)
    assert by_clerk.returncode == 0, by_clerk.stderr
    assert deployed.registry.read(int(json.loads(by_clerk.stdout)["token_id"], 16)).registrar == clerk.address
    assert_through_hub(deployed, json.loads(by_clerk.stdout)["tx_hash"], signer=clerk)

    revoked = deployed.cli("roles", "revoke", "registrar", clerk.address, "--json")
    assert revoked.returncode == 0, revoked.stderr
    assert_through_hub(deployed, json.loads(revoked.stdout)["tx_hash"])
    record2 = reference_order(order_number=f"OC-ROLE-{deployed.target.name}-2")
    refused = deployed.cli("register", str(write_json(tmp_path / "o2.json", record2)), str(pdf), "--json",
                           signer=clerk)
    assert refused.returncode == 1
    assert "lacks the registrar role" in one_line(refused.stderr)
    assert not deployed.registry.has_role("registrar", clerk.address)
    assert deployed.registry.has_role("registrar", deployed.signer.address)


@contextmanager
def publishing(documents: dict[str, bytes]) -> Iterator[str]:
    """A local web server publishing `documents` by path (an agency's site); yields its base URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 — http.server's name
            body = documents.get(self.path)
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def assert_through_hub(deployed: Deployment, tx_hash: str, *, deploy: bool = False,
                       signer: LocalAccount | None = None) -> None:
    """Through one of LACNet's models, the transaction is the model's hub call (relay: the 5-argument
    relayMetaTx or deployMetaTx, from the writer node; metatx: execute, from the relayer), signed by
    `signer` (default the deployment's: the hub's recovered sender, or the Forward's ``from``), and our
    calldata reads back out of it. Straight to the node: nothing to check."""
    model = deployed.target.model
    if model is None:
        return
    tx = deployed.target.rpc.call("eth_getTransactionByHash", [tx_hash])
    assert (tx["to"].lower(), tx["from"].lower()) == (model.hub.lower(), model.sender.lower())
    data = bytes.fromhex(tx["input"][2:])
    assert data[:4] == (model.deploy if deploy else model.call)
    assert model.unwrap(data) is not None
    assert model.signer_of(data) == (signer or deployed.signer).address


def relay_signer(data: bytes) -> str:
    """Who signed a relayMetaTx/deployMetaTx call (5-argument form): recovered from keccak256(signingData)."""
    _gas, signing_data, v, r, s = abi_decode(["uint256", "bytes", "uint8", "bytes32", "bytes32"], data[4:])
    signer: str = Account._recover_hash(keccak(signing_data), vrs=(v, int.from_bytes(r, "big"),
                                                                   int.from_bytes(s, "big")))
    return signer


def forward_signer(data: bytes) -> str:
    """The ``from`` of an execute call's Forward (the emulated hub checked its signature)."""
    decoded = decode_execute(data)
    assert decoded is not None
    return decoded[0].sender


def test_supersede_verify_fetch_export_ocds_and_the_page(deployed: Deployment, tmp_path: Path) -> None:
    name = deployed.target.name
    record = reference_order(order_number=f"OC-PORT-{name}-F")
    pdf = tmp_path / "orden.pdf"
    pdf.write_bytes(render_order(parse_order(record)))
    stamped = tmp_path / "sellada.pdf"
    documents: dict[str, bytes] = {}
    with publishing(documents) as site:
        record["document_url"] = f"{site}/oc/{name}.pdf"  # the agency publishes the stamped PDF itself
        registered = deployed.cli("register", str(write_json(tmp_path / "orden.json", record)), str(pdf),
                                  "--out", str(stamped), "--json")
        assert registered.returncode == 0, registered.stderr
        data = json.loads(registered.stdout)
        assert_through_hub(deployed, data["tx_hash"])
        documents[f"/oc/{name}.pdf"] = stamped.read_bytes()
        fetched = deployed.cli("--base-url", site, "verify", str(stamped), "--fetch", "--json")
        assert fetched.returncode == 0, fetched.stderr
        assert json.loads(fetched.stdout)["published"]["outcome"] == "original"
        documents[f"/oc/{name}.pdf"] = stamped.read_bytes().replace(b"%%EOF", b"%%EOF\n% otra")
        swapped = deployed.cli("--base-url", site, "verify", str(stamped), "--fetch", "--json")
        assert swapped.returncode == 1 and json.loads(swapped.stdout)["published"]["outcome"] == "altered"

    fixed = reference_order(order_number=f"OC-PORT-{name}-F-R1")
    fixed_pdf = tmp_path / "corregida.pdf"
    fixed_pdf.write_bytes(render_order(parse_order(fixed)))
    superseding = deployed.cli("register", str(write_json(tmp_path / "corregida.json", fixed)), str(fixed_pdf),
                               "--supersedes", data["token_id"], "--json")
    assert superseding.returncode == 0, superseding.stderr
    replacement = json.loads(superseding.stdout)
    assert_through_hub(deployed, replacement["tx_hash"])
    assert deployed.registry.state(int(data["token_id"], 16)).status == "superseded"
    replaced = deployed.registry.read(int(replacement["token_id"], 16))
    assert replaced.order == parse_order(fixed) and replaced.registrar == deployed.signer.address
    assert replaced.state.replaces == int(data["token_id"], 16)

    exported = deployed.cli("export-ocds", "--out", str(tmp_path / "ocds.json"), "--json")
    assert exported.returncode == 0, exported.stderr
    package = json.loads((tmp_path / "ocds.json").read_text())
    text = json.dumps(package["releases"])
    assert record["order_number"] in text and fixed["order_number"] in text
    assert json.loads(exported.stdout)["releases"] == deployed.registry.total_supply()

    registry = deployed.registry
    app = create_app(lambda: Registry(deployed.target.rpc, registry.address, from_block=registry.from_block),
                     PageSettings(base_url="https://oc.example.pe", sync_interval=0))
    order = parse_order(fixed)

    web = Client(app)
    page, api = web.get(order.verify_path), web.get(f"/api/orders/{replacement['token_id']}")
    web.close()
    assert page.status_code == 200 and fixed["order_number"] in page.text
    assert api.status_code == 200 and deployed.signer.address.lower() in api.text.lower()
