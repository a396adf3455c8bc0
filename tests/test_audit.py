"""`peru-compras audit`: every mirrored order's published document, downloaded under verify --fetch's rules
from a real local HTTP server that serves originals, one altered PDF, one missing (404) and one gone (410),
one that stalls mid-body, a redirect to a private address, an endless body, an HTML page instead of the PDF;
plus a host that is not allowed. The verdicts in the mirror, the report (HTML, CSV, JSON), the exit code,
politeness per host, incremental runs and a run killed with SIGKILL."""

from __future__ import annotations

import csv
import json
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from peru_compras.chain.rpc import Rpc
from peru_compras.hashing import hashlink, sha256
from peru_compras.mirror import mirror
from peru_compras.order import parse_order

from .conftest import CLI, Runner, funded_account, reference_order
from .test_mirror import reader, rows

TIMEOUT = 1.5
MAX_BYTES = 300_000
_count = iter(range(10**7))


def pdf_bytes(tag: str) -> bytes:
    """A small real PDF, different per tag."""
    import io

    import pikepdf

    pdf = pikepdf.new()
    pdf.add_blank_page()
    pdf.docinfo["/Title"] = tag
    out = io.BytesIO()
    pdf.save(out, deterministic_id=True)
    return out.getvalue()


class DocServer:
    """Serves `routes[path]`: bytes (200), an int status, or a callable(handler) that answers itself. Keeps
    the requests seen, the most in flight at once and the bytes sent per path."""

    def __init__(self) -> None:
        self.routes: dict[str, Any] = {}
        self.delay = 0.0
        self.seen: list[tuple[float, str]] = []
        self.in_flight = self.most_in_flight = 0
        self.sent: dict[str, int] = {}
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body are separate writes: no 40 ms delayed-ACK stall

            def do_GET(self) -> None:  # noqa: N802 — http.server's name
                with outer.lock:
                    outer.seen.append((time.monotonic(), self.path))
                    outer.in_flight += 1
                    outer.most_in_flight = max(outer.most_in_flight, outer.in_flight)
                try:
                    if outer.delay:
                        time.sleep(outer.delay)
                    route = outer.routes.get(self.path, 404)
                    if callable(route):
                        route(self)
                    elif isinstance(route, int):
                        self.send_response(route)
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                    else:
                        self.send_response(200)
                        self.send_header("Content-Type", "application/pdf")
                        self.send_header("Content-Length", str(len(route)))
                        self.end_headers()
                        self.wfile.write(route)
                finally:
                    with outer.lock:
                        outer.in_flight -= 1

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.base = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def stalled(handler: BaseHTTPRequestHandler) -> None:
    handler.send_response(200)
    handler.send_header("Content-Type", "application/pdf")
    handler.send_header("Content-Length", "100000")
    handler.end_headers()
    handler.wfile.write(b"%PDF-1.7\n" + b"0" * 1000)
    handler.wfile.flush()
    time.sleep(TIMEOUT * 4)  # never the rest


def endless(server: DocServer) -> Callable[[BaseHTTPRequestHandler], None]:
    """Sends a body with no declared length, "10 GB": until the client hangs up."""

    def answer(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "application/pdf")
        handler.send_header("Connection", "close")
        handler.end_headers()
        chunk = b"%PDF-" + b"x" * 65_531
        sent = 0
        try:
            while sent < 10 * 1024**3:
                handler.wfile.write(chunk)
                sent += len(chunk)
                server.sent[handler.path] = sent
        except OSError:
            pass
        handler.close_connection = True

    return answer


def redirect_to(location: str) -> Callable[[BaseHTTPRequestHandler], None]:
    def answer(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(302)
        handler.send_header("Location", location)
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    return answer


@pytest.fixture
def docs() -> Iterator[DocServer]:
    server = DocServer()
    yield server
    server.close()


def register(registry: Any, server: DocServer, path: str | None, content: bytes, **fields: Any) -> Any:
    """Register an order whose registered PDF is `content`, published at `path` on `server` (None: the
    built-in store's URL, base + hashlink)."""
    number = f"OC-A-{next(_count):05d}"
    record = reference_order(order_number=number, **fields)
    if path is not None:
        record["document_url"] = path if path.startswith("http") else server.base + path
    order = parse_order(record)
    digest = sha256(content)
    registry.register(order, digest)
    return order, digest


def audit_env(server: DocServer) -> dict[str, str]:
    return {"PERU_COMPRAS_BASE_URL": server.base, "PERU_COMPRAS_FETCH_TIMEOUT": str(TIMEOUT),
            "PERU_COMPRAS_FETCH_MAX_BYTES": str(MAX_BYTES)}


def status_of(path: Path) -> dict[str, tuple[str, str | None]]:
    return {r["order_number"]: (r["status"], r["detail"]) for r in rows(
        path, "SELECT o.order_number, a.status, a.detail FROM orders o JOIN audit a ON a.token_id = o.token_id")}


def test_every_kind_of_bad_publication_is_named_on_its_row_and_in_the_report(cli: Runner, rpc: Rpc, tmp_path: Path,
                                                                            docs: DocServer) -> None:
    registry = fresh_registry_at(rpc, docs)
    names: dict[str, str] = {}

    def add(kind: str, path: str | None, served: Any, content: bytes | None = None, **fields: Any) -> None:
        content = content or pdf_bytes(kind)
        order, digest = register(registry, docs, path, content, **fields)
        names[kind] = order.order_number
        docs.routes[path if path and not path.startswith("http") else "/d/" + hashlink(digest)] = (
            content if served == "same" else served)

    add("original", "/oc/1.pdf", "same")
    add("formula", "/oc/2.pdf", "same", supplier={"name": "=HIPERVINCULO(\"http://x.example\")",
                                                   "ruc": "20608712411"})
    add("store", None, "same")
    add("altered", "/oc/3.pdf", pdf_bytes("a different PDF"),
        entity={"name": "Municipalidad <b>Distrital</b> & \"Comas\"", "ruc": "20131370998"})
    add("missing", "/oc/4.pdf", 404)
    add("gone", "/oc/5.pdf", 410)
    add("stalled", "/oc/6.pdf", stalled)
    add("private", "/oc/7.pdf", redirect_to("http://10.0.0.7/orden.pdf"))
    add("endless", "/oc/8.pdf", endless(docs))
    add("html", "/oc/9.pdf", b"<!DOCTYPE html><html><body>Documento no disponible</body></html>")
    add("foreign", "https://documentos.otra-entidad.example/oc.pdf", None)

    out = tmp_path / "registro.sqlite"
    assert cli("mirror", "--registry", registry.address, "--out", str(out)).code == 0
    report = tmp_path / "informe.html"
    started = time.monotonic()
    result = cli("audit", "--mirror", str(out), "--out", str(report), "--json", env=audit_env(docs))
    took = time.monotonic() - started
    assert result.code == 1, result.stderr
    summary = result.json()
    assert {k: summary[k] for k in ("checked", "original", "altered", "missing", "unreachable", "refused")} == {
        "checked": 11, "original": 3, "altered": 2, "missing": 2, "unreachable": 1, "refused": 3}
    assert summary["all_original"] is False and summary["unchecked"] == 0
    assert took < 15  # the stalled server costs one time-out, not the run

    found = status_of(out)
    assert found[names["original"]] == ("original", None) and found[names["store"]][0] == "original"
    assert found[names["altered"]][0] == "altered" and "not the registered one" in found[names["altered"]][1]
    assert found[names["html"]][0] == "altered" and "HTML page" in found[names["html"]][1]
    assert found[names["missing"]][0] == "missing" and "404" in found[names["missing"]][1]
    assert found[names["gone"]][0] == "missing" and "410" in found[names["gone"]][1]
    assert found[names["stalled"]][0] == "unreachable"
    assert found[names["private"]][0] == "refused" and "10.0.0.7" in found[names["private"]][1]
    assert found[names["endless"]][0] == "refused" and "limit" in found[names["endless"]][1]
    assert docs.sent["/oc/8.pdf"] < 64 * 1024**2  # abandoned at the cap (plus what socket buffers took), not 10 GB
    assert found[names["foreign"]][0] == "refused" and "not allowed" in found[names["foreign"]][1]
    assert not any(path == "/orden.pdf" for _, path in docs.seen)
    times = [r["checked_at"] for r in rows(out, "SELECT checked_at FROM audit")]
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", t) for t in times)

    page = report.read_text(encoding="utf-8")
    assert "<script" not in page.lower() and "Auditoría de documentos publicados" in page
    assert not re.search(r"""(?:src|href)=["'](?!https?://127\.0\.0\.1|https://documentos\.otra)""", page)
    assert "default-src 'none'" in page and "<svg" in page
    assert "Municipalidad &lt;b&gt;Distrital&lt;/b&gt; &amp; &#34;Comas&#34;" in page  # escaped, in table and chart
    assert "<b>Distrital</b>" not in page
    for kind in ("altered", "missing", "gone", "stalled", "private", "endless", "html", "foreign"):
        assert names[kind] in page
    assert names["original"] not in page  # the table lists only what is not original
    assert f'href="{docs.base}/o/20131370998/{names["altered"]}"' in page  # its verification page
    with (tmp_path / "informe.csv").open(encoding="utf-8", newline="") as handle:
        table = list(csv.DictReader(handle))
    assert len(table) == 11
    (formula,) = [r for r in table if r["order_number"] == names["formula"]]
    assert formula["supplier_name"].startswith("'=")  # not a formula in a spreadsheet
    data = json.loads((tmp_path / "informe.json").read_text(encoding="utf-8"))
    assert data["summary"]["altered"] == 2 and len(data["not_original"]) == 8

    # incremental: nothing is due again within --recheck-after; a fixed document is original when re-checked
    again = cli("audit", "--mirror", str(out), "--out", str(report), "--json", env=audit_env(docs))
    assert again.code == 1 and again.json()["checked"] == 0 and again.json()["altered"] == 2
    docs.routes["/oc/9.pdf"] = docs.routes["/oc/1.pdf"]  # another order's original: still not this one's
    docs.routes["/oc/3.pdf"] = pdf_bytes("altered")  # the publisher restored the registered PDF
    fixed = cli("audit", "--mirror", str(out), "--out", str(report), "--json", "--recheck-after", "0",
                env=audit_env(docs))
    assert (fixed.json()["checked"], fixed.json()["altered"], fixed.json()["original"]) == (11, 1, 4)
    assert status_of(out)[names["altered"]] == ("original", None)
    add("new", "/oc/10.pdf", "same")
    mirror(reader(registry), out)
    newer = cli("audit", "--mirror", str(out), "--out", str(report), "--json", env=audit_env(docs))
    assert newer.json()["checked"] == 1 and newer.json()["original"] == 5


def fresh_registry_at(rpc: Rpc, docs: DocServer) -> Any:
    from peru_compras.chain.client import Registry
    from peru_compras.chain.networks import network
    from peru_compras.chain.transactions import Transactor

    deployed, _ = Registry.deploy(Transactor(rpc, funded_account(rpc), network("local")),
                                  document_base_uri=docs.base + "/d/")
    return deployed


def test_all_original_exits_0_and_the_host_is_not_hammered(cli: Runner, rpc: Rpc, tmp_path: Path,
                                                           docs: DocServer) -> None:
    registry = fresh_registry_at(rpc, docs)
    for index in range(16):
        content = pdf_bytes(f"ok {index}")
        register(registry, docs, f"/ok/{index}.pdf", content)
        docs.routes[f"/ok/{index}.pdf"] = content
    out = tmp_path / "ok.sqlite"
    mirror(reader(registry), out)
    docs.delay = 0.1
    result = cli("audit", "--mirror", str(out), "--out", str(tmp_path / "ok.html"), "--workers", "8",
                 "--per-host", "2", "--rate", "0", env=audit_env(docs))
    assert result.code == 0, result.stderr
    assert "16 original" in result.stdout and "0 altered" in result.stdout
    assert docs.most_in_flight == 2  # 8 workers, at most 2 at a time on this host
    page = (tmp_path / "ok.html").read_text(encoding="utf-8")
    assert "Los 16 documentos publicados son los originales registrados." in page

    docs.seen.clear()
    docs.delay = 0.0
    rated = cli("audit", "--mirror", str(out), "--out", str(tmp_path / "ok.html"), "--recheck-after", "0",
                "--rate", "10", "--per-host", "4", env=audit_env(docs))
    assert rated.code == 0
    starts = sorted(t for t, _ in docs.seen)
    assert starts[-1] - starts[0] >= 15 * 0.1 * 0.75  # 10 per second: 16 turns span 1.5 s (less the first trip)


def test_a_killed_audit_keeps_what_it_wrote_and_the_next_run_does_the_rest(cli: Runner, rpc: Rpc, tmp_path: Path,
                                                                          docs: DocServer) -> None:
    registry = fresh_registry_at(rpc, docs)
    content = pdf_bytes("many")
    for index in range(40):
        register(registry, docs, f"/k/{index}.pdf", content + str(index).encode())
        docs.routes[f"/k/{index}.pdf"] = content + str(index).encode()
    out = tmp_path / "k.sqlite"
    mirror(reader(registry), out)
    docs.delay = 0.08
    args = [*CLI, "audit", "--mirror", str(out), "--out", str(tmp_path / "k.html"), "--per-host", "1", "--json"]
    proc = subprocess.Popen(args, cwd=cli.cwd, env={**cli.env, **audit_env(docs)}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 30

    def saved() -> int:
        try:
            return int(rows(out, "SELECT count(*) AS n FROM audit")[0]["n"])
        except sqlite3.Error:
            return 0

    while saved() == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    kept = saved()
    assert 0 < kept < 40 and rows(out, "PRAGMA integrity_check")[0][0] == "ok"
    docs.delay = 0.0
    rest = cli("audit", "--mirror", str(out), "--out", str(tmp_path / "k.html"), "--json", env=audit_env(docs))
    assert rest.code == 0, rest.stderr
    assert rest.json()["checked"] == 40 - kept and rest.json()["original"] == 40


def test_bad_input_is_one_line_with_exit_2(cli: Runner, tmp_path: Path) -> None:
    missing = cli("audit", "--mirror", str(tmp_path / "nada.sqlite"))
    assert missing.code == 2 and "no mirror at" in missing.stderr
    other = tmp_path / "otro.sqlite"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE mine (x)")
    foreign = cli("audit", "--mirror", str(other))
    assert foreign.code == 2 and "is not a peru-compras mirror" in foreign.stderr
    text = tmp_path / "text.sqlite"
    text.write_text("hola\n" * 500)
    garbage = cli("audit", "--mirror", str(text))
    assert garbage.code == 2 and "is not an SQLite file" in garbage.stderr
    zero = cli("audit", "--mirror", str(other), "--per-host", "0")
    assert zero.code == 2 and "--per-host 0 is out of range" in zero.stderr
    for result in (missing, foreign, garbage, zero):
        assert len([line for line in result.stderr.splitlines() if line.strip()]) == 1, result.stderr


# -- the report and the explorer, in real Chromium ------------------------------------------------------------


def ruc(number: int) -> str:
    body = f"20{number:08d}"
    check = 11 - sum(int(d) * w for d, w in zip(body, (5, 4, 3, 2, 7, 6, 5, 4, 3, 2), strict=True)) % 11
    return body + str(check % 10)


ENTITIES = ("Hospital Regional de Piura", "Municipalidad Provincial de Cusco", "Gobierno Regional de Loreto",
            "Universidad Nacional de San Agustín", "Ministerio de Salud")


@pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="Debian's chromium is not at /usr/bin/chromium")
def test_the_report_and_a_canned_query_in_chromium_load_nothing_from_outside(cli: Runner, rpc: Rpc, tmp_path: Path,
                                                                            docs: DocServer) -> None:
    from playwright.sync_api import sync_playwright

    from peru_compras.chain.node import free_port

    from .conftest import ROOT

    registry = fresh_registry_at(rpc, docs)
    batch = []
    for index in range(60):
        entity = index % len(ENTITIES)
        content = pdf_bytes(f"chromium {index}")
        record = reference_order(order_number=f"OC-2026-{index:05d}", issued_on=f"2026-{index % 11 + 1:02d}-15",
                                 entity={"name": ENTITIES[entity], "ruc": ruc(1000 + entity)},
                                 buyer={"name": "Oficina de Abastecimiento", "ruc": ruc(1000 + entity)},
                                 supplier={"name": f"Proveedor Andino {index % 7} S.A.C.",
                                           "ruc": ruc(5000 + index % 7)})
        record["document_url"] = f"{docs.base}/pub/{index}.pdf"
        order = parse_order(record)
        batch.append((order, sha256(content)))
        docs.routes[f"/pub/{index}.pdf"] = (content if index % 9 else pdf_bytes("otra")) if index % 13 else 404
    registry.register_many(batch)
    for order, _ in batch[:4]:
        registry.annul(order.token_id, "Error en el monto adjudicado")
    out = tmp_path / "registro.sqlite"
    mirror(reader(registry), out)
    report = tmp_path / "informe.html"
    assert cli("audit", "--mirror", str(out), "--out", str(report), env=audit_env(docs)).code == 1
    artifacts = ROOT / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    port = free_port()
    explorer = subprocess.Popen([sys.executable, "-m", "datasette", "serve", str(out), "-m",
                                 str(ROOT / "peru_compras" / "data" / "datasette-metadata.json"), "--host", "127.0.0.1",
                                 "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium",
                                                 args=["--no-sandbox", "--disable-gpu", "--no-first-run",
                                                       "--disable-background-networking"])
            page = browser.new_page(viewport={"width": 1100, "height": 900}, locale="es-PE",
                                    java_script_enabled=False)  # the report needs no script
            asked: list[str] = []
            page.on("request", lambda request: asked.append(request.url))
            page.goto(report.as_uri())
            assert asked == [report.as_uri()]  # nothing else: no font, image, style or script from anywhere
            text = page.inner_text("body")
            assert "Auditoría de documentos publicados" in text and "Por entidad" in text and "En el tiempo" in text
            assert page.locator("svg").count() == 2 and page.locator("table tbody tr").count() > 0
            page.screenshot(path=str(artifacts / "audit-report.png"), full_page=False)
            canned = browser.new_page(viewport={"width": 1100, "height": 800}, locale="es-PE")
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 60
            while True:
                try:
                    if canned.goto(base + "/-/versions.json").status == 200:
                        break
                except Exception:  # noqa: BLE001 — not listening yet
                    pass
                assert time.monotonic() < deadline
                time.sleep(0.3)
            canned.goto(base + "/registro/ordenes_por_proveedor")
            assert "Órdenes por proveedor" in canned.inner_text("body")
            assert "Proveedor Andino" in canned.inner_text("table")
            canned.screenshot(path=str(artifacts / "datasette-canned-query.png"), full_page=False)
            browser.close()
    finally:
        explorer.terminate()
        explorer.wait(timeout=20)
