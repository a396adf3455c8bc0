"""The README's library example, run as printed against a real Anvil, and the promises of the use cases it
shows: prepare touches nothing, register stores and mints, verify_pdf reads a tampered copy as `altered`,
and a Workspace starts no chain on property access.

The example's code is taken from README.md itself (the ``python`` block of "Using it as a library"), so the
test fails as soon as the README and the library drift apart.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import pickle
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_account.signers.local import LocalAccount

from peru_compras.chain.client import Registry
from peru_compras.chain.node import LocalNode
from peru_compras.hashing import sha256
from peru_compras.order import parse_order
from peru_compras.render import render_order

from .conftest import ROOT, reference_order

NUMBER = "OC-2026-004514"
BASE_URL = "http://127.0.0.1:8000"  # the README's, the default


def readme_library_code() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Using it as a library\n", 1)[1].split("\n## ", 1)[0]
    (code,) = re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)
    return code


@pytest.fixture
def folder(tmp_path: Path, anvil: LocalNode, registry: Registry, admin: LocalAccount,
           monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The README's set-up lines: nueva.json (the reference order renumbered), nueva.pdf drawn by `render`
    (its QR printed), and the three variables it exports; the working folder is this one."""
    for name in list(os.environ):
        if name.startswith("PERU_COMPRAS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("PERU_COMPRAS_RPC", anvil.url)
    monkeypatch.setenv("PERU_COMPRAS_REGISTRY", registry.address)
    monkeypatch.setenv("PERU_COMPRAS_PRIVATE_KEY", admin.key.hex())
    monkeypatch.chdir(tmp_path)
    order = parse_order(reference_order(order_number=NUMBER))
    (tmp_path / "nueva.json").write_text(json.dumps(order.to_json(), ensure_ascii=False))
    (tmp_path / "nueva.pdf").write_bytes(render_order(order, verify_url=BASE_URL + order.verify_path))
    yield tmp_path


def run_example() -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(readme_library_code(), "README.md (library example)", "exec"), {"__name__": "__main__"})  # noqa: S102 — our own README
    return out.getvalue()


def test_the_readme_library_example_registers_and_verifies(folder: Path, registry: Registry) -> None:
    code = readme_library_code()
    assert len([line for line in code.splitlines() if line and not line.startswith(("from ", "import "))]) <= 5
    printed = run_example()
    found = re.fullmatch(r"authentic (http://127\.0\.0\.1:8000/d/(hl:zQm\w+))\n", printed)
    assert found, printed
    order = parse_order(reference_order(order_number=NUMBER))
    # minted: the chain holds the order, with the hash of the stamped PDF the store now keeps
    record = registry.read(order.token_id)
    assert record.state.status == "valid" and record.order.canonical_bytes() == order.canonical_bytes()
    stored = folder / ".peru-compras" / "documents" / record.state.document_hash.hex()[:2] / (
        record.state.document_hash.hex() + ".pdf")
    assert sha256(stored.read_bytes()) == record.state.document_hash
    assert stored.read_bytes() != (folder / "nueva.pdf").read_bytes()  # stamped, not the file as given
    from peru_compras.hashing import hashlink

    assert found.group(2) == hashlink(record.state.document_hash)
    # the README says what it prints
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "It prints `authentic http://127.0.0.1:8000/d/hl:zQm…`" in readme


def test_prepare_touches_nothing_and_pickles(folder: Path) -> None:
    from peru_compras.service import prepare

    order = parse_order(reference_order(order_number=NUMBER))
    document = (folder / "nueva.pdf").read_bytes()
    before = sorted(p.name for p in folder.rglob("*"))
    args = (order, document)
    prepared = prepare(*pickle.loads(pickle.dumps(args)), base_url=BASE_URL)
    assert sorted(p.name for p in folder.rglob("*")) == before  # no store, no state folder, no file
    again = pickle.loads(pickle.dumps(prepared))
    assert again.sha256 == sha256(again.document) and again.verify_url == BASE_URL + order.verify_path
    assert again.qr_text == again.verify_url  # no signer given: the plain QR


def test_a_tampered_copy_reads_altered_not_unregistered(folder: Path, registry: Registry) -> None:
    from peru_compras.demo import altered_copy
    from peru_compras.service import verify_pdf
    from peru_compras.verify import verify_document

    run_example()
    order = parse_order(reference_order(order_number=NUMBER))
    forged = altered_copy(order, BASE_URL + order.verify_path)  # same QR, a price raised
    verdict = verify_pdf(registry, forged)
    assert verdict.status == "altered" and verdict.token_id == order.token_id
    assert verdict.expected_sha256 == registry.state(order.token_id).document_hash
    assert verify_document(registry, forged).status == "not_registered"  # what the hash alone would say


def test_a_workspace_starts_no_chain_on_property_access(tmp_path: Path) -> None:
    from peru_compras.errors import NodeUnavailable
    from peru_compras.settings import load_settings
    from peru_compras.workspace import Workspace

    ws = Workspace(load_settings({"home": tmp_path / "home"}, env={}, cwd=tmp_path))
    assert ws.settings.is_embedded
    _ = ws.home, ws.chain, ws.store, ws.node_file, ws.deployment_file, ws.base_url, ws.page_server()
    with pytest.raises(NodeUnavailable, match="is not running"):
        _ = ws.rpc
    with pytest.raises(NodeUnavailable, match="is not running"):
        _ = ws.transactor
    assert ws.chain.running() is None and not ws.node_file.exists()
    assert not (tmp_path / "home" / "chain").exists()


def test_resolve_reads_every_reference_a_person_types(folder: Path, registry: Registry) -> None:
    from peru_compras.errors import InvalidInput, OrderNotRegistered
    from peru_compras.hashing import hashlink
    from peru_compras.service import resolve

    run_example()
    order = parse_order(reference_order(order_number=NUMBER))
    token, digest = order.token_id, registry.state(order.token_id).document_hash
    assert resolve(registry, order.key) == token
    assert resolve(registry, f"  {order.key} ") == token
    assert resolve(registry, str(token)) == token
    assert resolve(registry, f"0x{token:064x}") == token  # 64 hex digits: a registered token id first
    assert resolve(registry, f"{token:064x}".upper()) == token
    assert resolve(registry, digest.hex()) == token  # … else the document hash
    assert resolve(registry, hashlink(digest)) == token
    assert resolve(registry, "0x2a") == 42  # a short hex token id
    with pytest.raises(OrderNotRegistered, match="no order is registered with document"):
        resolve(registry, hashlink(bytes(32)))
    for bad in ("²", "٣", str(2**256), "OC-2026-004514", "0x", "", "hl:zQmnope"):
        with pytest.raises(InvalidInput):
            resolve(registry, bad)


class MemoryStore:
    """A document store of the caller's own (what a back office may publish elsewhere)."""

    def __init__(self) -> None:
        self.kept: dict[bytes, bytes] = {}

    def put(self, data: bytes) -> bytes:
        self.kept[sha256(data)] = data
        return sha256(data)

    def get(self, digest: bytes) -> bytes | None:
        return self.kept.get(digest)

    def url(self, digest: bytes) -> str:
        return f"https://archivo.example.pe/{digest.hex()}.pdf"


def test_a_session_of_the_callers_own_parts(tmp_path: Path, anvil: LocalNode, registry: Registry,
                                            admin: LocalAccount) -> None:
    from peru_compras.chain.networks import network
    from peru_compras.chain.rpc import Rpc
    from peru_compras.chain.transactions import Transactor
    from peru_compras.service import prepare, register, verify_pdf
    from peru_compras.settings import load_settings
    from peru_compras.workspace import Session

    settings = load_settings({"registry": registry.address, "base_url": "https://oc.example.pe", "home": tmp_path},
                             env={}, cwd=tmp_path, read_file=False)
    store = MemoryStore()
    session = Session(settings, transactor=Transactor(Rpc(anvil.url), admin, network("local")), store=store)
    order = parse_order(reference_order(order_number="OC-2026-004516"))
    prepared = prepare(order, render_order(order), base_url=session.base_url)  # drawn without a QR: stamped here
    registered = register(session, prepared)
    assert registered.document_url == store.url(prepared.sha256) and store.kept == {prepared.sha256: prepared.document}
    assert registered.to_json()["verify_url"] == "https://oc.example.pe" + order.verify_path
    assert registry.state(order.token_id).document_hash == prepared.sha256
    assert verify_pdf(session.registry(), prepared.document).status == "authentic"
    assert not any(tmp_path.iterdir())  # nothing of the default state folder was made
    again = register(session, prepared)  # the same registration again: finished, not refused
    assert again.resumed and again.registration.tx_hash == registered.registration.tx_hash


def test_the_use_cases_import_nothing_heavy() -> None:
    import subprocess
    import sys

    code = ("import sys\nfrom peru_compras import Session, prepare, register, resolve, verify_pdf\n"
            "import peru_compras.commands.base, peru_compras.urls\n"
            "print(sorted(m for m in ('web3', 'eth_account', 'py_ecc', 'pikepdf', 'eth_abi', 'requests')"
            " if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "[]", done.stdout + done.stderr
