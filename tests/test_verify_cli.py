"""The printed order end to end on a real Anvil: register stamps the QR, verify finds the order from the
paper itself, altered copies are caught and named, broken PDFs are refused with nothing written or minted,
and verify --fetch checks the published copy under its rules.

The CLI runs in-process through ``peru_compras.cli.main`` (one real subprocess run checks the installed
command too), with ``--home`` (a fresh state folder), ``--rpc`` (the session's Anvil) and a funded key in
PERU_COMPRAS_PRIVATE_KEY. The base URL is a small HTTP server of this module that publishes the home's
document store at ``/d/<hashlink>`` — or whatever a test makes it answer.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from peru_compras.chain.client import Registry
from peru_compras.chain.node import LocalNode
from peru_compras.chain.rpc import Rpc
from peru_compras.fetch import FetchPolicy, FetchRefused, address_is_public, fetch_document
from peru_compras.hashing import parse_digest
from peru_compras.store import LocalStore

from . import pdfs
from .conftest import CLI, Result, clean_env, funded_account, run_in_process
from .test_pdf import decode, qpdf_check


@dataclass
class Published:
    """The test's web server: the store under /d/, or a scripted answer per path."""

    store: LocalStore | None = None
    answers: dict[str, tuple[int, dict[str, str], bytes, float]] = field(default_factory=dict)
    hits: list[str] = field(default_factory=list)


def serve(published: Published) -> tuple[ThreadingHTTPServer, str]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 — http.server's name
            published.hits.append(self.path)
            status, headers, body, delay = published.answers.get(self.path, (0, {}, b"", 0.0))
            if not status:
                data = None
                if self.path.startswith("/d/") and published.store is not None:
                    data = published.store.get(parse_digest(self.path[3:]))
                status, body = (200, data) if data is not None else (404, b"no")
                headers = {"Content-Length": str(len(body))}
            time.sleep(delay)
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            with contextlib.suppress(OSError):
                self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"




@dataclass
class Setup:
    home: Path
    rpc: str
    base_url: str
    env: dict[str, str]
    published: Published
    registry: Registry
    folder: Path

    def run(self, *args: str, env: dict[str, str] | None = None) -> Result:
        """`peru-compras --home HOME --rpc RPC ARGS…` in-process, as main() runs it (conftest.run_in_process)."""
        return run_in_process(["--home", str(self.home), "--rpc", self.rpc, *args], cwd=self.folder,
                              env=clean_env(**{**self.env, **(env or {})}))

    def order(self, record: dict[str, Any], name: str | None = None) -> Path:
        path = self.folder / (name or f"{record['order_number']}.json")
        path.write_text(json.dumps(record, ensure_ascii=False), encoding="utf-8")
        return path

    def pdf(self, data: bytes, name: str) -> Path:
        path = self.folder / name
        path.write_bytes(data)
        return path

    def stored(self) -> int:
        return sum(1 for _ in (self.home / "documents").rglob("*.pdf"))

    def register(self, number: str, *extra: str, source: bytes | None = None,
                 record: dict[str, Any] | None = None) -> tuple[dict[str, Any], Path]:
        record = record or pdfs.record(number)
        out = self.folder / f"{number}-sellada.pdf"
        result = self.run("register", str(self.order(record)),
                          str(self.pdf(source or pdfs.order_pdf(record), f"{number}.pdf")),
                          "--out", str(out), "--json", *extra)
        assert result.code == 0, result.stderr
        return result.json(), out


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory, anvil: LocalNode) -> Iterator[Setup]:
    folder = tmp_path_factory.mktemp("printed")
    home = folder / "state"
    published = Published()
    server, base_url = serve(published)
    account = funded_account(Rpc(anvil.url))
    env = {"PERU_COMPRAS_PRIVATE_KEY": account.key.hex(), "PERU_COMPRAS_BASE_URL": base_url}
    probe = Setup(home, anvil.url, base_url, env, published, None, folder)  # type: ignore[arg-type]
    deployed = probe.run("deploy", "--json")
    assert deployed.code == 0, deployed.stderr
    probe.registry = Registry(Rpc(anvil.url), deployed.json()["registry"])
    published.store = LocalStore(home / "documents", base_url)
    yield probe
    server.shutdown()


# -- register and verify ----------------------------------------------------------------------------------

def test_register_stamps_the_qr_and_the_paper_verifies(setup: Setup, tmp_path: Path) -> None:
    data, out = setup.register("OC-2026-100001")
    url = f"{setup.base_url}/o/20131370998/OC-2026-100001"
    assert data["verify_url"] == url and data["stamped_pdf"] == str(out)
    stamped = out.read_bytes()
    (printed,) = decode(stamped)  # pdftoppm -r 150 + zbarimg
    assert printed.startswith(url + "#") and len(printed) <= 200  # H7: the signed QR (issue 17)
    qpdf_check(stamped, tmp_path)
    assert data["sha256"] == __import__("hashlib").sha256(stamped).hexdigest()
    assert data["document_url"] == f"{setup.base_url}/d/{data['hashlink']}"

    ok = setup.run("verify", str(out), "--json")
    assert (ok.code, ok.json()["status"], ok.json()["token_id"]) == (0, "authentic", data["token_id"])
    # a real process (python -m peru_compras), as a user runs it
    real = subprocess.run([*CLI, "verify", str(out), "--home", str(setup.home), "--rpc", setup.rpc],
                          env={"PATH": os.environ["PATH"], **setup.env}, capture_output=True, text=True, timeout=60)
    assert real.returncode == 0 and real.stdout.startswith("AUTHENTIC"), real.stderr


def test_altered_copy_is_altered_and_names_the_order(setup: Setup) -> None:
    data, out = setup.register("OC-2026-100002")
    forged = pdfs.alter_amount(out.read_bytes(), "18.50", "28.50")  # one unit price, still a valid PDF
    for name, document in (("forged.pdf", forged),
                           ("forged-no-info.pdf", pdfs.strip_docinfo(forged)),  # metadata stripped
                           ("forged-bare.pdf", pdfs.strip_markers(forged))):  # only the printed QR is left
        result = setup.run("verify", str(setup.pdf(document, name)), "--json")
        assert result.code == 1, result.stderr
        verdict = result.json()
        assert verdict["status"] == "altered", name
        assert (verdict["token_id"], verdict["order_number"], verdict["entity"]) == (
            data["token_id"], "OC-2026-100002", "20131370998")
        assert verdict["expected_sha256"] == data["sha256"] != verdict["sha256"]
    human = setup.run("verify", str(setup.folder / "forged.pdf"))
    assert human.stdout.startswith("ALTERED") and "OC-2026-100002 of Hospital Regional de Piura" in human.stdout


def test_token_and_order_number_options(setup: Setup) -> None:
    first, first_out = setup.register("OC-2026-100003")
    _, other_out = setup.register("OC-2026-100004")
    by_token = setup.run("verify", str(first_out), "--token", first["token_id"], "--json")
    assert (by_token.code, by_token.json()["status"]) == (0, "authentic")
    by_number = setup.run("verify", str(first_out), "--order-number", "OC-2026-100003", "--entity", "20131370998",
                          "--json")
    assert (by_number.code, by_number.json()["status"]) == (0, "authentic")
    wrong = setup.run("verify", str(other_out), "--token", first["token_id"], "--json")
    assert (wrong.code, wrong.json()["status"], wrong.json()["order_number"]) == (1, "altered", "OC-2026-100003")
    unknown = setup.run("verify", str(setup.pdf(pdfs.order_pdf(pdfs.record("OC-X")), "x.pdf")), "--json")
    assert (unknown.code, unknown.json()["status"]) == (1, "not_registered")
    half = setup.run("verify", str(first_out), "--order-number", "OC-2026-100003")
    assert half.code == 2 and "--entity" in half.stderr


def test_annulled_and_superseded_are_reported(setup: Setup) -> None:
    annulled, annulled_out = setup.register("OC-2026-100005")
    assert setup.run("annul", annulled["token_id"], "--reason", "Error en el monto del ítem 2").code == 0
    result = setup.run("verify", str(annulled_out), "--json")
    assert (result.code, result.json()["status"]) == (1, "annulled")
    assert result.json()["annul_reason"] == "Error en el monto del ítem 2"
    assert "reason: Error en el monto del ítem 2" in setup.run("verify", str(annulled_out)).stdout

    old, old_out = setup.register("OC-2026-100006")
    new, _ = setup.register("OC-2026-100006-R1", "--supersedes", old["token_id"])
    assert new["supersedes"] == old["token_id"]
    result = setup.run("verify", str(old_out), "--json")
    assert (result.code, result.json()["status"]) == (1, "superseded")
    assert int(str(result.json()["replaced_by"]), 0) == int(new["token_id"], 16)
    assert f"replaced by OC-2026-100006-R1 (token {new['token_id']})" in setup.run("verify", str(old_out)).stdout


# An encrypted PDF (even with an empty opening password) is refused now: stamping would override its
# owner's restrictions (README, "PDFs from outside"; tested with the other refusals in test_pdf.py).
@pytest.mark.parametrize("kind", ["incremental_update", "six_pages", "last_page"])
def test_valid_awkward_inputs_register_and_verify(setup: Setup, kind: str, tmp_path: Path) -> None:
    number = f"OC-2026-2{['incremental_update', 'six_pages', 'last_page'].index(kind):05d}"
    record = pdfs.big_record() | {"order_number": number} if kind == "six_pages" else pdfs.record(number)
    source = pdfs.order_pdf(record)
    extra: tuple[str, ...] = ()
    if kind == "incremental_update":
        source = pdfs.incremental_update(source)
    elif kind == "last_page":
        extra = ("--stamp-at", "last-page")
    data, out = setup.register(number, *extra, source=source, record=record)
    stamped = out.read_bytes()
    qpdf_check(stamped, tmp_path)
    (printed,) = decode(stamped, 2 if kind == "last_page" else 1)
    assert printed.startswith(data["verify_url"] + "#")  # H7: the signed QR (issue 17)
    result = setup.run("verify", str(out), "--json")
    assert (result.code, result.json()["status"]) == (0, "authentic"), result.stderr


def test_render_then_register_no_stamp_hashes_it_as_is(setup: Setup) -> None:
    record = pdfs.record("OC-2026-100007")
    rendered = setup.folder / "render.pdf"
    made = setup.run("render", str(setup.order(record)), "--out", str(rendered), "--json")
    assert made.code == 0, made.stderr
    result = setup.run("register", str(setup.order(record)), str(rendered), "--no-stamp", "--json")
    assert result.code == 0, result.stderr
    assert result.json()["sha256"] == __import__("hashlib").sha256(rendered.read_bytes()).hexdigest()
    assert setup.run("verify", str(rendered), "--json").json()["status"] == "authentic"


# -- untrusted PDFs ---------------------------------------------------------------------------------------

def test_every_broken_pdf_exits_2_and_nothing_is_written_or_minted(setup: Setup) -> None:
    supply, stored = setup.registry.total_supply(), setup.stored()
    valid = pdfs.order_pdf(pdfs.record("OC-2026-300000"))
    cases: list[tuple[str, bytes, str, dict[str, str]]] = [
        (kind, maker(valid), words, {}) for kind, (maker, words) in sorted(pdfs.BROKEN.items())
    ]
    cases += [("over_size", valid, "byte limit", {"PERU_COMPRAS_MAX_PDF_BYTES": "40KB"}),
              ("over_pages", pdfs.big_order_pdf(), "page limit", {"PERU_COMPRAS_MAX_PDF_PAGES": "5"})]
    for index, (kind, document, words, env) in enumerate(cases):
        record = pdfs.record(f"OC-2026-3{index:05d}")
        pdf = setup.pdf(document, f"{kind}.pdf")
        out = setup.folder / f"{kind}-sellada.pdf"
        result = setup.run("register", str(setup.order(record)), str(pdf), "--out", str(out), "--json", env=env)
        assert result.code == 2, (kind, result.stderr)
        assert result.stdout == "" and result.stderr.count("\n") == 1, kind
        assert str(pdf) in result.stderr and words in result.stderr and " — " in result.stderr, kind
        assert "Traceback" not in result.stderr and not out.exists(), kind
        checked = setup.run("verify", str(pdf), env=env)
        assert checked.code == 2 and str(pdf) in checked.stderr, kind
    assert setup.registry.total_supply() == supply
    assert setup.stored() == stored


# -- verify --fetch ---------------------------------------------------------------------------------------

def test_fetch_says_whether_the_published_pdf_is_the_original(setup: Setup) -> None:
    data, out = setup.register("OC-2026-400001")
    path = f"/d/{data['hashlink']}"
    setup.published.answers.pop(path, None)
    ok = setup.run("verify", str(out), "--fetch", "--json")
    assert ok.code == 0, ok.stderr
    assert ok.json()["published"]["outcome"] == "original"
    assert ok.json()["published"]["sha256"] == data["sha256"]

    only = setup.run("verify", "--fetch", "--token", data["token_id"], "--json")
    assert (only.code, only.json()["published"]["outcome"], only.json()["status"]) == (0, "original", "valid")

    replaced = pdfs.alter_amount(out.read_bytes(), "18.50", "28.50")
    setup.published.answers[path] = (200, {"Content-Length": str(len(replaced))}, replaced, 0.0)
    swapped = setup.run("verify", str(out), "--fetch", "--json")
    assert swapped.code == 1 and swapped.json()["status"] == "authentic"
    assert swapped.json()["published"]["outcome"] == "altered"

    setup.published.answers[path] = (404, {"Content-Length": "0"}, b"", 0.0)
    gone = setup.run("verify", str(out), "--fetch", "--json")
    assert (gone.code, gone.json()["published"]["outcome"]) == (1, "missing")

    setup.published.answers[path] = (200, {}, b"%PDF-" + b"0" * 300_000, 0.0)  # no Content-Length
    big = setup.run("verify", str(out), "--fetch", "--json", env={"PERU_COMPRAS_FETCH_MAX_BYTES": "100000"})
    assert (big.code, big.json()["published"]["outcome"]) == (2, "too_large")
    assert "100,000-byte limit" in big.stderr

    setup.published.answers[path] = (200, {"Content-Length": "10"}, b"%PDF-1.4\n%", 3.0)
    slow = setup.run("verify", str(out), "--fetch", "--json", env={"PERU_COMPRAS_FETCH_TIMEOUT": "1"})
    assert (slow.code, slow.json()["published"]["outcome"]) == (3, "unreachable")
    setup.published.answers.pop(path)


REDIRECTS = ["http://127.0.0.2:{port}/d/x", "http://localhost:{port}/d/x", "http://10.0.0.7/d/x",
             "http://169.254.169.254/latest/meta-data/"]


@pytest.mark.parametrize("location", REDIRECTS)
def test_fetch_never_follows_a_redirect_to_another_local_host(setup: Setup, location: str) -> None:
    data, out = setup.register(f"OC-2026-41{REDIRECTS.index(location):04d}")
    path = f"/d/{data['hashlink']}"
    port = setup.base_url.rsplit(":", 1)[1]
    target = location.format(port=port)
    setup.published.answers[path] = (302, {"Location": target, "Content-Length": "0"}, b"", 0.0)
    hosts = {"PERU_COMPRAS_FETCH_HOSTS": "127.0.0.2,localhost,10.0.0.7,169.254.169.254"}
    result = setup.run("verify", str(out), "--fetch", "--json", env=hosts)
    setup.published.answers.pop(path)
    assert result.code == 2, result.stderr
    assert result.json()["published"]["outcome"] == "refused"
    assert "loopback or private address" in result.stderr
    assert setup.published.hits.count(path) >= 1


def test_fetch_only_goes_to_allowed_hosts(setup: Setup) -> None:
    record = pdfs.record("OC-2026-400003") | {"document_url": "https://transparencia.example.org/oc/400003.pdf"}
    _, out = setup.register("OC-2026-400003", record=record)
    result = setup.run("verify", str(out), "--fetch", "--json")
    assert result.code == 2 and result.json()["published"]["outcome"] == "refused"
    assert "transparencia.example.org" in result.stderr and "PERU_COMPRAS_FETCH_HOSTS" in result.stderr


def test_fetch_policy_rules() -> None:
    policy = FetchPolicy.from_env("http://127.0.0.1:8000", ["docs.example.pe"])
    assert policy.host_allowed("127.0.0.1", 8000) and policy.host_allowed("docs.example.pe", 443)
    assert not policy.host_allowed("evil.example", 443)
    for address in ("127.0.0.1", "10.1.2.3", "192.168.0.1", "172.16.5.5", "169.254.169.254", "100.64.0.1",
                    "::1", "fe80::1", "fc00::1", "::ffff:127.0.0.1", "0.0.0.0", "224.0.0.1"):
        assert not address_is_public(address), address
    assert address_is_public("190.216.184.1") and address_is_public("2800:200::1")
    with pytest.raises(FetchRefused, match="not http"):
        fetch_document("ftp://127.0.0.1:8000/x.pdf", policy)
    with pytest.raises(FetchRefused, match="loopback or private"):
        fetch_document("http://127.0.0.1:9/x.pdf", FetchPolicy.from_env("http://127.0.0.1:8000", ["127.0.0.1:9"]))
