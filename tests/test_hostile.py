"""Hostile input, tried as an attacker would (issue 14): a registrar's key sending raw bytes to the contract,
a manifest pointing outside its folder, escape-laden text, slow clients, a crash between mint and --out.

Everything runs against real parts: Anvil, the compiled registry, the CLI as a subprocess, uvicorn on
loopback sockets.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import signal
import socket
import subprocess
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from eth_abi.abi import encode as abi_encode
from eth_utils.crypto import keccak
from hypothesis import given, settings
from hypothesis import strategies as st

from peru_compras.chain.client import REGISTER, Registry
from peru_compras.chain.networks import network
from peru_compras.chain.node import free_port
from peru_compras.chain.rpc import Rpc
from peru_compras.chain.transactions import Transactor
from peru_compras.order import ENCODING_VERSION, _dictionary, parse_order
from peru_compras.pdf import stamp_pdf
from peru_compras.render import render_order
from peru_compras.store import LocalStore
from peru_compras.terminal import hidden, json_line, safe
from peru_compras.web.app import PageSettings, create_app
from peru_compras.web.server import uvicorn_config

from .conftest import Runner, funded_account, reference_order, write_json
from .http_stub import read_body, send_json
from .test_batch import Chain, lines, make_orders, write_jsonl
from .test_batch import chain as chain  # noqa: F401 — a fixture
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
    "200,000 nested [": (b"20131370998/OC-HOSTILE-6", deflate(b"[" * 200_000)),  # killed serve (SIGSEGV)
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


# --------------------------------------------------------------------------------------------------
# Item 12: the server — slow clients, connection cap, HSTS behind trusted proxies only


async def tiny_app(scope: Any, receive: Any, send: Any) -> None:
    """Any ASGI app: the limits are the server's."""
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


class Served:
    """uvicorn as `serve` configures it, in a thread, on a free loopback port."""

    def __init__(self, app: Any, **limits: Any) -> None:
        import uvicorn

        self.port = free_port()
        self.server = uvicorn.Server(uvicorn_config(app, "127.0.0.1", self.port, **limits))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Served:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            assert time.monotonic() < deadline and self.thread.is_alive(), "uvicorn did not start"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)

    def connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=10)


def closed(sock: socket.socket) -> bool:
    """True once the server has closed (or reset) the connection."""
    sock.setblocking(False)
    try:
        return sock.recv(4096) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True
    finally:
        sock.setblocking(True)


def test_slow_header_clients_are_cut_at_the_request_deadline() -> None:
    """Five connections each sending one header line every 0.5 s (slowloris): all are closed within the
    2 s request deadline (uvicorn's own keep-alive timer never runs before a first request)."""
    with Served(tiny_app, request_timeout=2.0, keep_alive=1) as served:
        socks = [served.connect() for _ in range(5)]
        for sock in socks:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
        started = time.monotonic()
        cut: dict[int, float] = {}
        while len(cut) < len(socks) and time.monotonic() - started < 6:
            for index, sock in enumerate(socks):
                if index in cut:
                    continue
                if closed(sock):
                    cut[index] = time.monotonic() - started
                    continue
                try:
                    sock.sendall(b"X-Slow: %d\r\n" % index)
                except OSError:
                    cut[index] = time.monotonic() - started
            time.sleep(0.5)
        for sock in socks:
            sock.close()
        assert len(cut) == 5, f"still open after 6 s: {sorted(set(range(5)) - set(cut))}"
        assert max(cut.values()) < 3.5, cut
        # a client that sends its request at once is served
        with served.connect() as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert sock.recv(4096).startswith(b"HTTP/1.1 200")


def test_idle_keep_alive_connection_is_closed() -> None:
    with Served(tiny_app, request_timeout=5.0, keep_alive=1) as served, served.connect() as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.recv(4096).startswith(b"HTTP/1.1 200")
        sock.settimeout(4)
        started = time.monotonic()
        assert sock.recv(4096) == b""  # closed by the server, not by this timeout
        assert time.monotonic() - started < 3


def test_one_client_cannot_hold_more_than_its_share_of_connections() -> None:
    with Served(tiny_app, max_per_client=3) as served:
        socks = [served.connect() for _ in range(5)]
        time.sleep(0.3)
        assert [closed(sock) for sock in socks] == [False, False, False, True, True]
        for sock in socks[:3]:  # the first three still work
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert sock.recv(4096).startswith(b"HTTP/1.1 200")
        for sock in socks:
            sock.close()
        time.sleep(0.3)
        with served.connect() as sock:  # closing them gave the client its share back
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert sock.recv(4096).startswith(b"HTTP/1.1 200")


def _head(port: int, path: str, headers: dict[str, str]) -> dict[str, str]:
    import httpx

    response = httpx.get(f"http://127.0.0.1:{port}{path}", headers=headers, timeout=10)
    return {name.lower(): value for name, value in response.headers.items()}


def test_hsts_only_over_https_as_told_by_a_trusted_proxy(hostile: Hostile) -> None:
    reader = Registry(Rpc(hostile.registry.rpc.url), hostile.registry.address)
    app = create_app(lambda: reader, PageSettings(base_url=BASE, store=hostile.store))
    with Served(app) as served:  # trusted: 127.0.0.1 (the default)
        assert "strict-transport-security" not in _head(served.port, "/favicon.ico", {})
        over_https = _head(served.port, "/favicon.ico", {"X-Forwarded-Proto": "https"})
        assert over_https["strict-transport-security"] == "max-age=31536000"
    with Served(app, trusted_proxies="10.9.9.9") as served:  # the visitor itself claims https: ignored
        assert "strict-transport-security" not in _head(served.port, "/favicon.ico", {"X-Forwarded-Proto": "https"})


def test_serve_drops_the_signing_key_from_its_environment(hostile: Hostile, cli: Runner, tmp_path: Path) -> None:
    import httpx

    from .conftest import CLI

    key = cli.env["PERU_COMPRAS_PRIVATE_KEY"]
    port = free_port()
    env = {**cli.env, "PERU_COMPRAS_KEYSTORE_PASSWORD": "hunter2-not-needed"}
    process = subprocess.Popen([*CLI, "--registry", hostile.registry.address, "--base-url", f"http://127.0.0.1:{port}",
                                "serve", "--port", str(port)], cwd=tmp_path, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None and time.monotonic() < deadline, "serve did not start"
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        environ = Path(f"/proc/{process.pid}/environ").read_bytes()
        assert key.encode() not in environ and key.removeprefix("0x").encode() not in environ
        assert b"PERU_COMPRAS_PRIVATE_KEY" not in environ and b"hunter2" not in environ
        assert b"PERU_COMPRAS_RPC=" in environ  # what it needs stays
        token = f"0x{hostile.good.token_id:064x}"
        assert httpx.get(f"http://127.0.0.1:{port}/api/orders/{token}", timeout=10).status_code == 200
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.mark.parametrize("umask", [0o002, 0o022, 0o077])
def test_files_follow_the_umask(umask: int, cli: Runner, tmp_path: Path) -> None:
    """Stamped PDFs, QR codes, exports and stored documents are public: they get 0666 less the umask (before,
    every file written through a temporary file was 0600, whatever the umask)."""
    from .conftest import CLI

    order = write_json(tmp_path / "orden.json", reference_order())
    out = tmp_path / "qr.svg"
    done = subprocess.run([*CLI, "qr", str(order), "--out", str(out)], cwd=tmp_path, env=cli.env,
                          capture_output=True, text=True, timeout=60, preexec_fn=lambda: os.umask(umask))
    assert done.returncode == 0, done.stderr
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask
    previous = os.umask(umask)
    try:
        store = LocalStore(tmp_path / "documents", BASE)
        digest = store.put(b"%PDF-1.7 loose")
        writer = store.pack_writer()
        packed = writer.add(b"%PDF-1.7 packed")
        writer.close()
    finally:
        os.umask(previous)
    assert store.path(digest).stat().st_mode & 0o777 == 0o666 & ~umask
    pack = next((tmp_path / "documents" / "packs").glob("*.pack"))
    assert pack.stat().st_mode & 0o777 == 0o666 & ~umask, packed


# --------------------------------------------------------------------------------------------------
# Items 3 and 7: look-alike identifiers and escape-laden text, on the page and on the terminal

LOOKALIKE = "\u041e\u0421-2026-004512"  # Cyrillic "ОС": pixel-identical to OC-2026-004512
EVIL_REASON = "Error en el monto\u202e odnauqnirt\x1b[2K\r  status: valid\u200b"


def test_lookalike_order_number_written_to_the_contract_is_refused_by_the_page(hostile: Hostile,
                                                                              hostile_page: Client) -> None:
    key = f"20131370998/{LOOKALIKE}".encode()
    token = send_raw(hostile.registry, raw_entry(key, deflate(json.dumps(good_body()).encode())))
    page = hostile_page.get(f"/o/20131370998/{LOOKALIKE}")
    assert page.status_code == 502 and "mal formado" in page.text
    assert "vigente" not in page.text
    assert hostile_page.get(f"/api/orders/0x{token:064x}").status_code == 502


def test_non_ascii_in_identifiers_is_marked_with_its_code_point(hostile: Hostile, hostile_page: Client) -> None:
    """Should a look-alike ever reach the page (a decoder of another version), each non-ASCII character of
    the order number and ids is highlighted with its U+ code and a warning says so."""
    import dataclasses

    from peru_compras.chain.client import OnChainOrder, OrderState
    from peru_compras.web.chainview import View

    page = hostile_page.app.page
    genuine = hostile.good
    fake = dataclasses.replace(genuine, order_number="OC\u20112026\u3164GOOD-1")
    html = {}
    for name, order in (("genuine", genuine), ("fake", fake)):
        state = OrderState(order.token_id, b"\x11" * 32, "valid", 0, None, None)
        view = View(OnChainOrder(state, order, "0x" + "22" * 32, 1, "0x" + "33" * 20, BASE + "/d/x", None), None)
        html[name] = page.render("order.html", **page.context("es", False, order.verify_path),
                                 p=page.order_values(view, "es", False, None, {})).body.decode()
    assert '<mark class="nonascii"' not in html["genuine"] and 'class="lookalike"' not in html["genuine"]
    assert html["fake"].count('<mark class="nonascii" title="U+2011">\u2011<sup>U+2011</sup></mark>') == 2
    assert '<mark class="nonascii" title="U+3164"><sup>U+3164</sup></mark>' in html["fake"]  # a filler: only its code
    assert 'class="lookalike" role="alert"' in html["fake"] and "no son ASCII" in html["fake"]


@pytest.fixture(scope="module")
def annulled_evil(hostile: Hostile) -> Any:
    """An order annulled by a hostile annuller's key straight through the contract: ESC and U+202E."""
    order = parse_order(reference_order(order_number="OC-2026-EVIL-1"))
    hostile.registry.register(order, hashlib.sha256(b"evil pdf").digest())
    hostile.registry.annul(order.token_id, EVIL_REASON)
    return order


def test_bidi_in_the_annulment_reason_cannot_reverse_the_verdict(annulled_evil: Any, hostile_page: Client) -> None:
    html = hostile_page.get(annulled_evil.verify_path).text
    assert "\u202e" not in html and "\x1b" not in html and "\u200b" not in html
    sentence = html.split('<section class="verdict bad"')[1].split("</section>")[0]
    assert '<bdi dir="auto">Error en el monto\\u202e odnauqnirt\\x1b[2K\\x0d  status: valid\\u200b</bdi>' in sentence
    assert sentence.index("<bdi") > sentence.index("anularon") and "Motivo: «<bdi" in sentence


def test_show_prints_outside_text_escaped(annulled_evil: Any, hostile: Hostile, cli: Runner) -> None:
    shown = cli("--registry", hostile.registry.address, "show", annulled_evil.key)
    assert shown.code == 0, shown.stderr
    assert "\x1b" not in shown.stdout and "\u202e" not in shown.stdout and "\r" not in shown.stdout
    assert "\\x1b[2K\\x0d  status: valid" in shown.stdout and "\\u202e" in shown.stdout
    as_json = cli("--registry", hostile.registry.address, "show", annulled_evil.key, "--json")
    assert "\u202e" not in as_json.stdout and "\x1b" not in as_json.stdout
    assert as_json.json()["annul_reason"] == EVIL_REASON  # the same string, escaped as JSON


def test_crafted_document_url_with_escapes_is_refused_and_never_printed_raw(hostile: Hostile, cli: Runner) -> None:
    url = "https://oc.example.pe/d/x\x1b[1A\x1b[2K  status: valid\x9b2K"
    key = b"20131370998/OC-2026-URL-1"
    token = send_raw(hostile.registry, raw_entry(key, deflate(json.dumps(good_body(document_url=url)).encode())))
    shown = cli("--registry", hostile.registry.address, "show", f"0x{token:064x}")
    assert shown.code == 1 and "malformed" in shown.stderr
    assert "\x1b" not in shown.stderr + shown.stdout and "\x9b" not in shown.stderr + shown.stdout


def test_annul_refuses_control_and_bidi_characters_in_the_reason(hostile: Hostile, cli: Runner) -> None:
    order = parse_order(reference_order(order_number="OC-2026-ANNUL-1"))
    hostile.registry.register(order, hashlib.sha256(b"annul pdf").digest())
    hostile.registry.grant("annuller", cli.account.address)  # type: ignore[attr-defined]
    for reason in ("Monto\u202e errado", "Monto\x1b[2K errado", "Monto\u200b errado"):
        done = cli("--registry", hostile.registry.address, "annul", order.key, "--reason", reason)
        assert done.code == 2, done.stderr
        assert "--reason" in done.stderr and "U+" in done.stderr and "\x1b" not in done.stderr
    assert hostile.registry.state(order.token_id).status == "valid"


# --------------------------------------------------------------------------------------------------
# Item 5: manifest `pdf` paths that leave their folder; item 10: bad rows each on their own line


def test_traversal_manifest_reads_nothing_outside_its_folder(chain: Chain, tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "file.pdf").write_bytes(b"%PDF-1.7 the payroll " + os.urandom(16))
    folder = tmp_path / "work" / "m"
    rows = make_orders(folder, 6, prefix="OC-TRAV")
    (folder / "link.pdf").symlink_to(secret / "file.pdf")
    (folder / "sub").mkdir()
    (folder / "sub" / "up").symlink_to(secret)
    rows[1]["pdf"] = "../../secret/file.pdf"       # exists
    rows[2]["pdf"] = "../../secret/nothere.pdf"    # does not: the same answer
    rows[3]["pdf"] = str(secret / "file.pdf")      # absolute
    rows[4]["pdf"] = "link.pdf"                    # a link inside the folder, to outside
    rows[5]["pdf"] = "sub/up/file.pdf"             # a linked folder
    manifest = write_jsonl(folder / "manifest.jsonl", rows)
    done = chain.cli("register-batch", str(manifest), "--no-stamp", "--json")
    assert done.returncode == 1, done.stderr
    out = lines(done.stdout)
    assert out[-1] == {"summary": {"registered": 1, "already_registered": 0, "failed": 5}}
    errors = {str(line["order_number"]): str(line["error"]) for line in out if "error" in line}
    for row in rows[1:]:
        name = str(row["pdf"])[:80]  # a name from outside is shown cut at 80 characters (long tmp paths under xdist)
        assert errors[str(row["order_number"])] == (
            f"pdf {name!r} is not a file inside {str(folder)!r} — give each `pdf` relative to the manifest's folder "
            "(or --pdf-dir), without '..' or links that lead out of it"), errors
    assert chain.registry.total_supply() == 1
    stored = b"".join(path.read_bytes() for path in (chain.home / "documents").rglob("*") if path.is_file())
    assert b"the payroll" not in stored


def test_bad_csv_cells_are_refused_row_by_row_and_the_good_rows_go_on(chain: Chain, tmp_path: Path) -> None:
    folder = tmp_path / "c"
    rows = make_orders(folder, 6, prefix="OC-CELL")
    cells = {1: ("items", "[{\"description\": broken"), 2: ("delivery_term_days", "\u00b2"),
             3: ("delivery_term_days", "9" * 5000), 4: ("items", "[" * 5000 + "]" * 5000)}
    with (folder / "manifest.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        columns = ["order_number", "issued_on", "entity_name", "entity_ruc", "buyer_name", "supplier_name",
                   "supplier_ruc", "items", "total_amount", "delivery_place", "delivery_term_days", "pdf"]
        writer.writerow(columns)
        for index, row in enumerate(rows):
            e, s, d = row["entity"], row["supplier"], row["delivery"]
            values = dict(zip(columns, [row["order_number"], row["issued_on"], e["name"], e["ruc"], e["name"],  # type: ignore[index]
                                        s["name"],  # type: ignore[index]
                                        s["ruc"], json.dumps(row["items"]), row["total"]["amount"],  # type: ignore[index]
                                        d["place"], d["term_days"], row["pdf"]], strict=True))  # type: ignore[index]
            if index in cells:
                values[cells[index][0]] = cells[index][1]
            writer.writerow(values.values())
    done = chain.cli("register-batch", str(folder / "manifest.csv"), "--no-stamp", "--json")
    assert done.returncode == 1, done.stderr  # SPEC: some rows refused
    assert "internal error" not in done.stderr and "Traceback" not in done.stderr
    out = lines(done.stdout)
    assert out[-1] == {"summary": {"registered": 2, "already_registered": 0, "failed": 4}}, done.stdout
    errors = {int(str(line["row"])): str(line["error"]) for line in out if "error" in line}
    assert sorted(errors) == [2, 3, 4, 5]  # data rows 2..5 (row 1 and 6 registered)
    assert "row 2" in errors[2] and "items" in errors[2]
    assert "term_days" in errors[3] and "'²'" in errors[3]
    assert "term_days" in errors[4] and len(errors[4]) < 400
    assert "row 5" in errors[5] and "nest" in errors[5]
    assert all("\n" not in error for error in errors.values())


def test_bad_order_files_are_input_errors(cli: Runner, tmp_path: Path) -> None:
    from .pdfs import order_pdf

    pdf = tmp_path / "orden.pdf"
    pdf.write_bytes(order_pdf(reference_order()))
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 5000 + "]" * 5000)
    term = tmp_path / "term.json"
    term.write_text(json.dumps(reference_order()).replace('"term_days": 15', '"term_days": ' + "9" * 5000))
    assert "9" * 5000 in term.read_text()
    for order in (deep, term):
        done = cli("register", str(order), str(pdf))
        assert done.code == 2 and "internal error" not in done.stderr, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1 and str(order.name) in done.stderr


# --------------------------------------------------------------------------------------------------
# Item 8: kill -9 between mint and --out, then the same command again


class HoldingProxy:
    """A JSON-RPC proxy to the node that forwards everything but holds every eth_getTransactionReceipt
    once a transaction was sent: the CLI is then parked in its receipt wait, its order minted."""

    def __init__(self, upstream: str) -> None:
        import http.server
        import urllib.request

        self.sent = threading.Event()
        self.release = threading.Event()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = read_body(self)
                method = json.loads(body).get("method")
                if method == "eth_getTransactionReceipt" and proxy.sent.is_set():
                    proxy.release.wait(60)
                request = urllib.request.Request(upstream, body, {"Content-Type": "application/json"})
                with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - loopback
                    answer = response.read()
                if method == "eth_sendRawTransaction":
                    proxy.sent.set()
                send_json(self, answer)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()


def test_kill_9_while_awaiting_the_receipt_then_rerun_finishes(cli: Runner, hostile: Hostile, tmp_path: Path) -> None:
    from .conftest import CLI
    from .pdfs import order_pdf

    record = reference_order(order_number="OC-2026-KILL-1")
    order_file = write_json(tmp_path / "orden.json", record)
    (tmp_path / "orden.pdf").write_bytes(order_pdf(record))
    out = tmp_path / "sellada.pdf"
    flags = ["--registry", hostile.registry.address]
    command = [*flags, "register", str(order_file), str(tmp_path / "orden.pdf"), "--out", str(out), "--json"]
    hostile.registry.grant("registrar", cli.account.address)  # type: ignore[attr-defined]
    proxy = HoldingProxy(cli.env["PERU_COMPRAS_RPC"])
    try:
        with (tmp_path / "killed.err").open("w") as err:
            process = subprocess.Popen([*CLI, *command], cwd=tmp_path, env={**cli.env, "PERU_COMPRAS_RPC": proxy.url},
                                       stdout=subprocess.DEVNULL, stderr=err)
        deadline = time.monotonic() + 60
        while not proxy.sent.wait(0.1):
            assert process.poll() is None and time.monotonic() < deadline, (tmp_path / "killed.err").read_text()
        time.sleep(0.5)  # it is waiting for the receipt now
        assert process.poll() is None
        process.send_signal(signal.SIGKILL)
        process.wait(10)
    finally:
        proxy.close()
    token_id = parse_order({k: v for k, v in record.items()}).token_id
    state = hostile.registry.state(token_id)
    assert state.registered, "the order was not minted before the kill"
    assert out.exists(), "the stamped PDF was lost with the process"
    assert hashlib.sha256(out.read_bytes()).digest() == state.document_hash
    out.unlink()  # even without it, the same command finishes the job
    again = cli(*command)
    assert again.code == 0, again.stderr
    data = again.json()
    assert data["token_id"] == f"0x{token_id:064x}" and data["resumed"] is True
    assert data["sha256"] == state.document_hash.hex() and data["stamped_pdf"] == str(out)
    assert hashlib.sha256(out.read_bytes()).digest() == state.document_hash
    assert hostile.registry.total_supply() >= 1
    other = write_json(tmp_path / "otra.json", {**record, "delivery": {"place": "Otro almacén", "term_days": 3}})
    refused = cli(*flags, "register", str(other), str(tmp_path / "orden.pdf"), "--out", str(tmp_path / "x.pdf"))
    assert refused.code == 1 and "already registered" in refused.stderr  # not the same inputs: refused
    assert not (tmp_path / "x.pdf").exists()


# --------------------------------------------------------------------------------------------------
# The terminal filter itself: any text in, nothing a terminal acts on out; JSON keeps the same string

@settings(max_examples=300, deadline=None)
@given(st.text())
def test_terminal_filter_leaves_nothing_hidden_and_json_keeps_the_string(text: str) -> None:
    shown = safe(text)
    assert not any(hidden(char) for char in shown)
    line = json_line({"value": text})
    assert json.loads(line) == {"value": text}
    assert not any(hidden(char) for char in line)


def test_error_lines_tell_no_memory_address() -> None:
    assert safe("cannot use <peru_compras.store.LocalStore object at 0x7f3a2b1c9d10>") == \
        "cannot use <peru_compras.store.LocalStore object>"


def test_deeply_nested_jsonl_row_is_its_own_line(chain: Chain, tmp_path: Path) -> None:
    folder = tmp_path / "j"
    rows = make_orders(folder, 2, prefix="OC-DEEP")
    manifest = folder / "manifest.jsonl"
    manifest.write_text(json.dumps(rows[0]) + "\n" + "[" * 200_000 + "\n" + json.dumps(rows[1]) + "\n")
    done = chain.cli("register-batch", str(manifest), "--no-stamp", "--json")
    assert done.returncode == 1, done.stderr
    out = lines(done.stdout)
    assert out[-1] == {"summary": {"registered": 2, "already_registered": 0, "failed": 1}}
    (refused,) = [line for line in out if "error" in line]
    assert refused["row"] == 2 and "line 2" in str(refused["error"]) and "nest" in str(refused["error"])


def test_out_that_cannot_be_written_stops_before_minting(cli: Runner, hostile: Hostile, tmp_path: Path) -> None:
    from .pdfs import order_pdf

    record = reference_order(order_number="OC-2026-NOOUT-1")
    (tmp_path / "orden.pdf").write_bytes(order_pdf(record))
    (tmp_path / "a-file").write_text("not a folder")
    hostile.registry.grant("registrar", cli.account.address)  # type: ignore[attr-defined]
    done = cli("--registry", hostile.registry.address, "register", str(write_json(tmp_path / "o.json", record)),
               str(tmp_path / "orden.pdf"), "--out", str(tmp_path / "a-file" / "sellada.pdf"))
    assert done.code == 2 and "cannot write --out" in done.stderr and "nothing was registered" in done.stderr
    assert not hostile.registry.state(parse_order(record).token_id).registered
