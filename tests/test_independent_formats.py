"""Every format peru-compras publishes, checked by an implementation we did not write.

- The record on chain: ``docs/read-registry.mjs`` (ethers v6 and Node's zlib, nothing from peru_compras,
  written from the README's "The record on chain") reads orders registered on a real Anvil through the CLI
  and must print what ``peru-compras show --json`` prints.
- The canonical form: equal to RFC 8785 (JCS) as PyPI ``rfc8785`` and npm ``canonicalize`` write it, for
  the reference record and for generated records (Unicode names, long amounts, quotes and backslashes).
- Hashlinks: encoded and decoded by PyPI ``multiformats`` (multibase base58btc of a sha2-256 multihash).
- ERC-721: ``tokenURI``'s JSON valid against EIP-721's metadata JSON schema; ``supportsInterface`` asked
  by ethers for interface ids computed from OpenZeppelin's interface ABIs (``tests/js/erc721-check.mjs``).
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import rfc8785
from eth_account import Account
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from multiformats import multibase, multicodec, multihash, varint

from peru_compras.chain.client import Registry
from peru_compras.chain.networks import network
from peru_compras.chain.node import LocalNode
from peru_compras.chain.rpc import Rpc
from peru_compras.chain.transactions import Transactor
from peru_compras.errors import InvalidInput
from peru_compras.hashing import hashlink, parse_digest
from peru_compras.order import parse_order
from peru_compras.render import render_order

from .conftest import REFERENCE, ROOT, Runner, funded_account, write_json

NODE = shutil.which("node") or "node"
READER = ROOT / "docs" / "read-registry.mjs"
JS = ROOT / "tests" / "js"
REFERENCE_FILE = ROOT / "peru_compras" / "samples" / "01-hospital-piura.json"  # the reference record

# EIP-721's "ERC721 Metadata JSON Schema", as the standard gives it
ERC721_METADATA_SCHEMA: dict[str, Any] = {
    "title": "Asset Metadata",
    "type": "object",
    "properties": {
        "name": {"type": "string", "description": "Identifies the asset to which this NFT represents"},
        "description": {"type": "string", "description": "Describes the asset to which this NFT represents"},
        "image": {
            "type": "string",
            "description": "A URI pointing to a resource with mime type image/* representing the asset to which "
                           "this NFT represents. Consider making any images at a width between 320 and 1080 pixels "
                           "and aspect ratio between 1.91:1 and 4:5 inclusive.",
        },
    },
}


def node(script: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([NODE, str(script), *args], capture_output=True, text=True, timeout=60, input=stdin,
                          cwd=ROOT)


# --------------------------------------------------------------------------------------------------
# Orders on a real chain, registered by the CLI


@dataclass
class Registered:
    cli: Runner
    rpc_url: str
    registry: str
    keys: dict[str, str]  # what each order is -> its ENTITY/ORDER_NUMBER
    shown: dict[str, dict[str, Any]]  # what each order is -> `peru-compras show KEY --json`


def _record(number: str, **changes: Any) -> dict[str, Any]:
    record = copy.deepcopy(REFERENCE)
    record.update(order_number=number, **changes)
    return record


@pytest.fixture(scope="module")
def registered(tmp_path_factory: pytest.TempPathFactory, anvil: LocalNode, rpc: Rpc) -> Iterator[Registered]:
    folder = tmp_path_factory.mktemp("independent")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PERU_COMPRAS_")}
    env.update(PERU_COMPRAS_RPC=anvil.url, PERU_COMPRAS_PRIVATE_KEY=funded_account(rpc).key.hex(),
               PERU_COMPRAS_BASE_URL="https://oc.example.pe")
    cli = Runner(folder, env)

    def run(*args: str) -> dict[str, Any]:
        result = cli(*args, "--json")
        assert result.code == 0, result.stderr
        data: dict[str, Any] = result.json()
        return data

    def files(name: str, record: dict[str, Any]) -> tuple[str, str]:
        pdf = folder / f"{name}.pdf"
        pdf.write_bytes(render_order(parse_order(record)))
        return str(write_json(folder / f"{name}.json", record)), str(pdf)

    registry = run("deploy")["registry"]
    single = _record("OC-IND-0001")
    run("register", *files("single", single))
    corrected = _record("OC-IND-0001-R1", total={"amount": "5889.99", "currency": "PEN"})
    run("register", *files("corrected", corrected), "--supersedes", "20131370998/OC-IND-0001")
    foreign = _record(
        "2026/NORTE-7", entity={"name": "Council of Ñandú \"Norte\" \\ Sur", "id": "09506232", "scheme": "GB-COH"},
        buyer={"name": "Compras — Oficina 東京 🚚"}, total={"amount": "123456789012345.123456", "currency": "USD"},
        delivery={"place": "Depósito «Central», piso 3", "deadline": "2027-01-31"},
        document_url="https://docs.example.org/ordenes/%C3%B1and%C3%BA-7.pdf?v=1&x=%22")
    run("register", *files("foreign", foreign), "--no-stamp")
    rows = []
    for index in range(2):
        row = _record(f"OC-IND-B{index}")
        files(f"batch{index}", row)
        row["pdf"] = f"batch{index}.pdf"
        rows.append(row)
    manifest = folder / "batch.jsonl"
    manifest.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    result = cli("register-batch", str(manifest), "--no-stamp", "--json")
    assert result.code == 0, result.stderr
    run("annul", "20131370998/OC-IND-B1", "--reason", "Duplicada — se anuló «por error»")
    keys = {"superseded": "20131370998/OC-IND-0001", "supersedes": "20131370998/OC-IND-0001-R1",
            "foreign, with document_url": "GB-COH:09506232/2026/NORTE-7", "batch": "20131370998/OC-IND-B0",
            "annulled": "20131370998/OC-IND-B1"}
    yield Registered(cli, anvil.url, registry, keys, {what: run("show", key) for what, key in keys.items()})


def test_the_docs_reader_prints_what_show_prints(registered: Registered) -> None:
    for what, key in registered.keys.items():
        shown = {k: v for k, v in registered.shown[what].items() if k != "verify_url"}  # a setting of ours
        for ref in (key, shown["token_id"]):
            result = node(READER, registered.rpc_url, registered.registry, ref)
            assert result.returncode == 0, (what, result.stderr)
            assert json.loads(result.stdout) == shown, what
    statuses = {what: shown["status"] for what, shown in registered.shown.items()}
    assert statuses == {"superseded": "superseded", "supersedes": "valid", "foreign, with document_url": "valid",
                        "batch": "valid", "annulled": "annulled"}


def test_the_docs_reader_reads_through_lacnets_relay(lacnet_emulator: Any, tmp_path: Path) -> None:
    """On LACNet the node returns the RelayHub's relayMetaTx: the reader finds our call inside it."""
    emu = lacnet_emulator
    account = Account.create()
    emu.permit(account.address)
    profile = replace(network("lacnet-protestnet"), trusted_forwarder=emu.forwarder)
    signer = Transactor(Rpc(emu.url), account, profile, node_address=emu.node_address)
    registry, _ = Registry.deploy(signer, document_base_uri="https://oc.example.pe/d/")
    registry.register(parse_order(_record("OC-LACNET-1")), hashlib.sha256(b"one").digest())
    registry.register_many([(parse_order(_record(f"OC-LACNET-B{n}")), hashlib.sha256(b"b%d" % n).digest())
                            for n in range(2)])
    env = {k: v for k, v in os.environ.items() if not k.startswith("PERU_COMPRAS_")}
    cli = Runner(tmp_path, env)
    for key in ("20131370998/OC-LACNET-1", "20131370998/OC-LACNET-B1"):
        shown = cli("--network", "lacnet-protestnet", "--rpc", emu.url, "--registry", registry.address,
                    "--trusted-forwarder", emu.forwarder, "show", key, "--json")
        assert shown.code == 0, shown.stderr
        expected = {k: v for k, v in shown.json().items() if k != "verify_url"}
        assert expected["registrar"] == account.address  # the signer, not the hub
        result = node(READER, emu.url, registry.address, key)
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout) == expected, key


def test_the_docs_reader_reads_through_lacnets_erc2771_hub(tmp_path: Path) -> None:
    """LACNet's open-standards model: the relayer's transaction is the hub's execute(forward, callData, …)."""
    from peru_compras.chain.metatx import MetaTxTransactor

    from .lacnet.metatx import MetaTxEmulator

    with MetaTxEmulator() as emu:
        account = Account.create()
        profile = replace(network("lacnet-protestnet"), metatx_hub=emu.hub)
        signer = MetaTxTransactor(Rpc(emu.url), account, emu.new_relayer(), profile, hub=emu.hub)
        registry, _ = Registry.deploy(signer, document_base_uri="https://oc.example.pe/d/")
        registry.register(parse_order(_record("OC-MTX-1")), hashlib.sha256(b"mtx").digest())
        env = {k: v for k, v in os.environ.items() if not k.startswith("PERU_COMPRAS_")}
        shown = Runner(tmp_path, env)("--network", "lacnet-protestnet", "--lacnet-model", "metatx", "--metatx-hub",
                                      emu.hub, "--rpc", emu.url, "--registry", registry.address, "show",
                                      "20131370998/OC-MTX-1", "--json")
        assert shown.code == 0, shown.stderr
        expected = {k: v for k, v in shown.json().items() if k != "verify_url"}
        assert expected["registrar"] == account.address  # the registrar who signed, not the relayer
        result = node(READER, emu.url, registry.address, "20131370998/OC-MTX-1")
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout) == expected


def test_the_docs_reader_says_when_nothing_is_registered(registered: Registered) -> None:
    result = node(READER, registered.rpc_url, registered.registry, "20131370998/OC-NUNCA")
    assert result.returncode == 1 and result.stdout == ""
    assert "no order is registered as token 0x" in result.stderr


def test_token_uri_is_erc721_metadata_and_interfaces_match_openzeppelin(registered: Registered) -> None:
    which = ["batch", "annulled", "superseded"]
    tokens = [registered.shown[what]["token_id"] for what in which]
    result = node(JS / "erc721-check.mjs", registered.rpc_url, registered.registry, *tokens)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    # the ids computed from OpenZeppelin's ABIs are those the EIPs publish
    assert out["ids"] == {"ERC165": "0x01ffc9a7", "ERC721": "0x80ac58cd", "ERC721Metadata": "0x5b5e139f",
                          "ERC5192": "0xb45a3c0e", "ERC4906_functions": "0x00000000", "ERC4906": "0x49064906",
                          "AccessControl": "0x7965db0b", "ERC721Enumerable": "0x780e9d63",
                          "ERC721Receiver": "0x150b7a02", "invalid": "0xffffffff"}
    assert out["supported"] == {"ERC165": True, "ERC721": True, "ERC721Metadata": True, "ERC5192": True,
                                "ERC4906": True, "AccessControl": True, "ERC721Enumerable": False,
                                "ERC721Receiver": False, "invalid": False}
    for what, token, status in zip(which, tokens, ["valid", "annulled", "superseded"], strict=True):
        uri = out["tokenURI"][token]
        prefix = "data:application/json;base64,"
        assert uri.startswith(prefix)
        metadata = json.loads(base64.b64decode(uri[len(prefix):], validate=True).decode("utf-8"))
        jsonschema.validate(metadata, ERC721_METADATA_SCHEMA)  # what the standard requires of the JSON
        assert isinstance(metadata["name"], str) and isinstance(metadata["description"], str)
        assert metadata["attributes"] == [{"trait_type": "sha256", "value": "0x" + registered.shown[what]["sha256"]},
                                          {"trait_type": "status", "value": status}]


def test_the_schema_check_bites() -> None:
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"name": 7, "description": "x"}, ERC721_METADATA_SCHEMA)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(["not", "an", "object"], ERC721_METADATA_SCHEMA)


# --------------------------------------------------------------------------------------------------
# RFC 8785: PyPI rfc8785 and npm canonicalize


class Canonicalize:
    """npm `canonicalize` in one long-lived node process (tests/js/canonicalize.mjs)."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen([NODE, str(JS / "canonicalize.mjs")], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, cwd=ROOT)

    def __call__(self, value: Any) -> bytes:
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(json.dumps(value) + "\n")  # ASCII with \u escapes: the reader must undo them
        self.proc.stdin.flush()
        return base64.b64decode(self.proc.stdout.readline())

    def close(self) -> None:
        assert self.proc.stdin
        self.proc.stdin.close()
        self.proc.wait(timeout=10)


@pytest.fixture(scope="module")
def canonicalize() -> Iterator[Canonicalize]:
    js = Canonicalize()
    yield js
    js.close()


def test_reference_record_canonical_bytes_are_rfc8785(canonicalize: Canonicalize) -> None:
    record = json.loads(REFERENCE_FILE.read_text(encoding="utf-8"))
    ours = parse_order(record).canonical_bytes()
    assert ours == rfc8785.dumps(record) == canonicalize(record)
    assert len(ours) == 795  # as the README says
    assert hashlib.sha256(ours).hexdigest() == hashlib.sha256(rfc8785.dumps(record)).hexdigest()


_TEXT = st.text(st.characters(categories=("L", "M", "N", "P", "S", "Zs"), include_characters='"\\/<>&\u00a0'),
                min_size=1, max_size=40).map(str.strip).filter(bool)


def _amount() -> st.SearchStrategy[str]:
    whole = st.integers(1, 10**15 - 1).map(str)
    return st.one_of(whole, st.tuples(st.integers(0, 10**15 - 1), st.integers(1, 10**6 - 1), st.integers(1, 6)).map(
        lambda t: f"{t[0]}.{str(t[1]).zfill(6)[-t[2]:]}").filter(lambda s: s.strip("0.") != ""))


@st.composite
def records(draw: st.DrawFn) -> dict[str, Any]:
    item = st.fixed_dictionaries({"description": _TEXT, "quantity": _amount(), "unit": _TEXT},
                                 optional={"unit_price": _amount(), "cubso": st.from_regex(r"\A[0-9]{8,16}\Z")})
    delivery = st.one_of(st.fixed_dictionaries({"place": _TEXT, "term_days": st.integers(1, 3650)}),
                         st.fixed_dictionaries({"place": _TEXT, "deadline": st.dates().map(lambda d: d.isoformat())}))
    record = copy.deepcopy(REFERENCE)
    record.update(
        order_number=draw(st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9._/-]{0,39}\Z")),
        entity={"name": draw(_TEXT), "ruc": "20131370998"},
        buyer=draw(st.one_of(st.fixed_dictionaries({"name": _TEXT}), st.just(REFERENCE["buyer"]))),
        supplier={"name": draw(_TEXT), "ruc": "20608712411"}, items=draw(st.lists(item, min_size=1, max_size=4)),
        total={"amount": draw(_amount()), "currency": draw(st.sampled_from(["PEN", "USD", "EUR"]))},
        delivery=draw(delivery))
    return record


@pytest.mark.slow
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records())
def test_canonical_bytes_are_rfc8785_for_generated_records(canonicalize: Canonicalize, record: dict[str, Any]) -> None:
    try:
        order = parse_order(record)
    except InvalidInput:  # e.g. a key over 255 bytes: not a record, nothing to compare
        return
    expected = rfc8785.dumps(order.to_json())
    assert order.canonical_bytes() == expected
    assert canonicalize(order.to_json()) == expected


# --------------------------------------------------------------------------------------------------
# Hashlinks: PyPI multiformats


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=32, max_size=32))
def test_hashlinks_are_multibase_base58btc_sha256_multihashes(digest: bytes) -> None:
    theirs = "hl:" + multibase.encode(multihash.wrap(digest, "sha2-256"), "base58btc")
    assert hashlink(digest) == theirs
    assert parse_digest(theirs) == digest
    decoded = multibase.decode(hashlink(digest).removeprefix("hl:"))
    assert multihash.unwrap(decoded) == digest and multihash.from_digest(decoded).name == "sha2-256"


@pytest.mark.parametrize("name", ["sha2-512", "keccak-256", "sha3-256", "identity"])
def test_a_hashlink_of_another_hash_function_is_refused(name: str) -> None:
    size = 64 if name == "sha2-512" else 32  # <code varint> <size varint> <digest>, the code from multicodec's table
    multi = varint.encode(multicodec.get(name).code) + varint.encode(size) + bytes(range(size))
    link = "hl:" + multibase.encode(multi, "base58btc")
    with pytest.raises(InvalidInput, match="not a SHA-256 hashlink"):
        parse_digest(link)


def test_a_hashlink_in_another_multibase_is_refused() -> None:
    multi = multihash.wrap(hashlib.sha256(b"x").digest(), "sha2-256")
    for base in ("base32", "base64url", "base16"):
        with pytest.raises(InvalidInput):
            parse_digest("hl:" + multibase.encode(multi, base))
