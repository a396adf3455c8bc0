"""Hostile input, tried as an attacker would (issue 14): a registrar's key sending raw bytes to the contract,
a manifest pointing outside its folder, escape-laden text, slow clients, a crash between mint and --out.

Everything runs against real parts: Anvil, the compiled registry, the CLI as a subprocess, uvicorn on
loopback sockets.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from eth_abi.abi import encode as abi_encode
from eth_utils.crypto import keccak

from peru_compras.chain.client import REGISTER, Registry
from peru_compras.chain.networks import network
from peru_compras.chain.rpc import Rpc
from peru_compras.chain.transactions import Transactor
from peru_compras.order import ENCODING_VERSION, _dictionary, parse_order
from peru_compras.pdf import stamp_pdf
from peru_compras.render import render_order
from peru_compras.store import LocalStore
from peru_compras.web.app import PageSettings, create_app

from .conftest import Runner, funded_account, reference_order
from .test_web import Client

BASE = "https://oc.example.pe"


# --------------------------------------------------------------------------------------------------
# Item 4: malformed on-chain entries, sent to the contract directly


def deflate(body: bytes) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15, 9, zlib.Z_DEFAULT_STRATEGY, _dictionary())
    return compressor.compress(body) + compressor.flush()


def good_body(**changes: Any) -> dict[str, Any]:
    """The body the contract stores for the reference order (order number and entity id are in the key)."""
    body = parse_order(reference_order()).to_json()
    del body["order_number"]
    body["entity"] = {"name": body["entity"]["name"]}
    body.update(changes)
    return body


def raw_entry(key: bytes, packed: bytes) -> bytes:
    digest = hashlib.sha256(key + packed).digest()
    return digest + bytes([len(key)]) + key + bytes([ENCODING_VERSION]) + packed


def send_raw(registry: Registry, entry: bytes) -> int:
    """What a registrar's key in the wrong hands can do: call register(bytes) with any bytes."""
    assert registry.transactor is not None
    registry.transactor.transact(registry.address, REGISTER + abi_encode(["bytes"], [entry]), action="raw entry")
    return int.from_bytes(keccak(entry[33: 33 + entry[32]]), "big")


def _term(days: str) -> bytes:
    body = good_body()
    body["delivery"] = {"place": body["delivery"]["place"], "term_days": 1}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return text.replace('"term_days":1', '"term_days":' + days).encode()


MALFORMED = {
    "empty list body": (b"20131370998/OC-HOSTILE-1", deflate(b"[]")),
    "key not UTF-8": (b"20131370998/OC-\xff\xfe-2", deflate(json.dumps(good_body()).encode())),
    "bad DEFLATE": (b"20131370998/OC-HOSTILE-3", b"\xff\xfe\xfd not deflate at all"),
    "entity as a string": (b"20131370998/OC-HOSTILE-4", deflate(json.dumps(good_body(entity="x")).encode())),
    "5,000-digit term_days": (b"20131370998/OC-HOSTILE-5", deflate(_term("9" * 5000))),
}


@dataclass
class Hostile:
    registry: Registry
    good: Any
    bad: dict[str, int]
    store: LocalStore


@pytest.fixture(scope="module")
def hostile(rpc: Rpc, tmp_path_factory: pytest.TempPathFactory) -> Hostile:
    account = funded_account(rpc)
    registry, _ = Registry.deploy(Transactor(rpc, account, network("local")), document_base_uri=BASE + "/d/")
    store = LocalStore(tmp_path_factory.mktemp("hostile") / "documents", BASE)
    good = parse_order(reference_order(order_number="OC-2026-GOOD-1"))
    verify_url = BASE + good.verify_path
    digest = store.put(stamp_pdf(render_order(good, verify_url=verify_url), verify_url, order=good))
    bad = {name: send_raw(registry, raw_entry(key, packed)) for name, (key, packed) in MALFORMED.items()}
    registry.register(good, digest)  # registered after the bad ones: export order must not hide it
    return Hostile(registry, good, bad, store)


@pytest.fixture(scope="module")
def hostile_page(hostile: Hostile) -> Iterator[Client]:
    reader = Registry(Rpc(hostile.registry.rpc.url), hostile.registry.address)
    web = Client(create_app(lambda: reader, PageSettings(base_url=BASE, store=hostile.store, sync_interval=0)))
    yield web
    web.close()


@pytest.mark.parametrize("name", list(MALFORMED))
def test_malformed_entry_answers_502_json_and_the_good_order_still_shows(hostile: Hostile, hostile_page: Client,
                                                                        name: str) -> None:
    token = f"0x{hostile.bad[name]:064x}"
    for route in (f"/api/orders/{token}", f"/api/tokens/{token}"):
        for _ in range(2):  # the second answer comes from the cache of broken records: the same
            response = hostile_page.get(route)
            assert response.status_code == 502, (name, route, response.text)
            assert response.headers["content-type"] == "application/json"
            assert response.json() == {"error": "unreadable", "detail": "the on-chain record could not be read"}
            assert "\n" not in response.text
    page = hostile_page.get(f"/t/{token}")
    assert page.status_code == 502
    assert "mal formado" in page.text and "text/html" in page.headers["content-type"]
    assert hostile_page.get(f"/api/orders/0x{hostile.good.token_id:064x}").status_code == 200
    assert hostile_page.get(hostile.good.verify_path).status_code == 200


def test_show_names_the_malformed_record_and_export_ocds_keeps_the_others(hostile: Hostile, cli: Runner,
                                                                           tmp_path: Path) -> None:
    flags = ["--registry", hostile.registry.address]
    for name, token_id in hostile.bad.items():
        shown = cli(*flags, "show", f"0x{token_id:064x}")
        assert shown.code == 1, (name, shown.stderr)
        lines = shown.stderr.strip().splitlines()
        assert len(lines) == 1 and "internal error" not in shown.stderr, (name, shown.stderr)
        assert f"0x{token_id:064x}" in lines[0] and "malformed" in lines[0], lines[0]
    exported = cli(*flags, "export-ocds", "--out", str(tmp_path / "package.json"), "--json")
    assert exported.code == 1, exported.stderr
    package = json.loads((tmp_path / "package.json").read_text())
    assert [release["tender"]["id"] if "tender" in release else release["ocid"] for release in package["releases"]]
    assert len(package["releases"]) == 1
    assert hostile.good.order_number in json.dumps(package["releases"][0], ensure_ascii=False)
    skipped = [line for line in exported.stderr.splitlines() if line.startswith("skipped:")]
    assert len(skipped) == len(hostile.bad), exported.stderr
    assert sorted(exported.json()["unreadable"]) == sorted(f"0x{t:064x}" for t in hostile.bad.values())
