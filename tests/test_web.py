"""The verification page in-process (httpx's ASGI transport) against real Anvil: routes, API, escaping,
headers, limits, caching, the published-document check; and the detached server the demo starts.

:func:`deploy_orders` is shared with test_browser.py: a registry holding the sample orders, an annulled
one, a superseded one and its replacement, and an order whose text fields are HTML/script payloads.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hashlib
import json
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest

from peru_compras.chain.client import Registry
from peru_compras.chain.networks import network
from peru_compras.chain.node import free_port
from peru_compras.chain.rpc import Rpc
from peru_compras.chain.transactions import Transactor
from peru_compras.demo import altered_copy, sample_orders
from peru_compras.errors import InvalidOrder
from peru_compras.hashing import hashlink
from peru_compras.order import Order, parse_order
from peru_compras.pdf import stamp_pdf
from peru_compras.render import render_order
from peru_compras.settings import Settings
from peru_compras.store import LocalStore
from peru_compras.web.app import Guard, PageSettings, app_from_workspace, create_app
from peru_compras.web.published import DocumentChecker, TokenBucket
from peru_compras.web.server import start_detached, stop_detached, uvicorn_config
from peru_compras.workspace import Workspace

from .conftest import funded_account, reference_order

PAYLOAD_SCRIPT = "<script>window.__pwned=1;alert(1)</script>"
PAYLOAD_IMG = '<img src=x onerror="window.__pwned=1;alert(1)">'
PAYLOAD_ATTR = '"><svg onload=alert(1)>'
ANNUL_REASON = "Monto errado <img src=x onerror=alert(1)>"


def xss_record() -> dict[str, Any]:
    record = reference_order(order_number="OC-XSS-1")  # order numbers are plain ASCII: the markup is elsewhere
    record["entity"] = {"name": "Entidad </script><script>window.__pwned=1</script>", "ruc": "20131370998"}
    record["buyer"] = {"name": PAYLOAD_SCRIPT}
    record["supplier"] = {"name": "Proveedor {{7*7}} ${7*7} " + PAYLOAD_ATTR, "ruc": "20608712411"}
    record["items"] = [
        {"description": PAYLOAD_IMG, "quantity": "1", "unit": "<u>UNIDAD</u>", "unit_price": "10"},
        {"description": "javascript:alert(1)", "quantity": "2", "unit": "CAJA"},
    ]
    record["delivery"] = {"place": PAYLOAD_ATTR + " " + PAYLOAD_SCRIPT, "term_days": 3}
    return record


@dataclass
class Deployment:
    """A registry with orders on Anvil and their stamped PDFs in a built-in store."""

    rpc_url: str
    registry: Registry
    store: LocalStore
    base_url: str
    orders: dict[str, Order] = field(default_factory=dict)
    pdfs: dict[str, bytes] = field(default_factory=dict)

    def url(self, name: str) -> str:
        return self.base_url + self.orders[name].verify_path

    def reader(self, rpc: Rpc | None = None) -> Registry:
        return Registry(rpc or Rpc(self.rpc_url), self.registry.address, from_block=self.registry.from_block)

    def register(self, name: str, order: Order, *, supersedes: int | None = None) -> None:
        verify_url = self.base_url + order.verify_path
        document = stamp_pdf(render_order(order, verify_url=verify_url), verify_url, order=order)
        digest = self.store.put(document)
        if supersedes is None:
            self.registry.register(order, digest)
        else:
            self.registry.supersede(supersedes, order, digest)
        self.orders[name] = order
        self.pdfs[name] = document


def deploy_orders(rpc: Rpc, folder: Path, base_url: str, *, document_base_uri: str | None = None) -> Deployment:
    account = funded_account(rpc)
    registry, _ = Registry.deploy(Transactor(rpc, account, network("local")),
                                  document_base_uri=base_url + "/d/" if document_base_uri is None
                                  else document_base_uri)
    deployment = Deployment(rpc.url, registry, LocalStore(folder / "documents", base_url), base_url)
    samples = sample_orders()
    deployment.register("valid", samples[0])
    deployment.register("annulled", samples[1])
    registry.annul(samples[1].token_id, ANNUL_REASON)
    deployment.register("old", samples[2])
    replacement = parse_order({**samples[2].to_json(), "order_number": samples[2].order_number + "-R1"})
    deployment.register("replacement", replacement, supersedes=samples[2].token_id)
    deployment.register("xss", parse_order(xss_record()))
    valid = samples[0]
    deployment.pdfs["altered"] = altered_copy(valid, base_url + valid.verify_path)
    return deployment


class Client:
    """A synchronous face on httpx.AsyncClient over the ASGI app (one event loop per app)."""

    def __init__(self, app: Guard, client: tuple[str, int] = ("127.0.0.1", 50000)) -> None:
        self.app = app
        self.loop = asyncio.new_event_loop()
        transport = httpx.ASGITransport(app=app, client=client)
        self.http = httpx.AsyncClient(transport=transport, base_url="http://testserver")

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.loop.run_until_complete(self.http.get(url, **kwargs))

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        return self.loop.run_until_complete(self.http.request(method, url, **kwargs))

    def close(self) -> None:
        self.loop.run_until_complete(self.http.aclose())
        self.loop.close()


class CountingRpc(Rpc):
    def __init__(self, url: str) -> None:
        super().__init__(url, timeout=5, attempts=1)
        self.calls: list[str] = []

    def call(self, method: str, params: list[Any] | None = None, *, retry: bool = True) -> Any:
        self.calls.append(method)
        return super().call(method, params, retry=retry)


BASE = "http://testserver"


@pytest.fixture(scope="module")
def deployment(rpc: Rpc, tmp_path_factory: pytest.TempPathFactory) -> Deployment:
    return deploy_orders(rpc, tmp_path_factory.mktemp("web"), BASE)


@pytest.fixture(scope="module")
def counting_rpc(deployment: Deployment) -> CountingRpc:
    return CountingRpc(deployment.rpc_url)


@pytest.fixture(scope="module")
def client(deployment: Deployment, counting_rpc: CountingRpc) -> Iterator[Client]:
    app = create_app(lambda: deployment.reader(counting_rpc),
                     PageSettings(base_url=BASE, store=deployment.store, sync_interval=0))
    web = Client(app)
    yield web
    web.close()


def page_text(html: str) -> str:
    """The visible text of a page (tags dropped, entities decoded)."""

    class Text(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.parts: list[str] = []
            self.skip = 0

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            if tag in ("script", "style"):
                self.skip += 1

        def handle_endtag(self, tag: str) -> None:
            if tag in ("script", "style"):
                self.skip -= 1

        def handle_data(self, data: str) -> None:
            if not self.skip:
                self.parts.append(data)

    parser = Text()
    parser.feed(html)
    return " ".join(" ".join(parser.parts).split())


class Elements(HTMLParser):
    """Every element with its attributes (to find scripts, event handlers, links)."""

    def __init__(self) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))


def elements(html: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = Elements()
    parser.feed(html)
    return parser.elements


# --------------------------------------------------------------------------------------------------
# The order page


def test_order_page_has_verdict_checks_and_record_in_spanish(client: Client, deployment: Deployment) -> None:
    order = deployment.orders["valid"]
    response = client.get(order.verify_path)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["content-language"] == "es-PE"
    html = response.text
    text = page_text(html)
    assert '<html lang="es-PE">' in html
    assert text.count("Orden de compra registrada y vigente") == 1
    record = deployment.reader().read(order.token_id)
    for expected in (
        "N° de orden", "OC-2026-004512", "Hospital Regional de Piura", "RUC 20131370998",
        "Unidad de Logística — Oficina de Abastecimiento", "Distribuidora Andina del Perú S.A.C.", "RUC 20608712411",
        "Guantes de nitrilo talla M, caja x 100", "120", "CAJA", "2,000", "UNIDAD", "S/ 18.50", "S/ 5,890.00",
        "15 días calendario", "Almacén central, Av. Independencia 1010, Castilla, Piura", "20 de noviembre de 2026",
        "Registrada en blockchain", "Estado: vigente", "Documento publicado",
        record.tx_hash, record.registrar, deployment.registry.address, "31337", hashlink(record.state.document_hash),
        record.state.document_hash.hex(),
    ):
        assert expected in text, expected
    links = [attrs.get("href") for tag, attrs in elements(html) if tag == "a"]
    assert record.document_url in links
    assert record.document_url == f"{BASE}/d/{hashlink(record.state.document_hash)}"
    assert not [link for link in links if link and "explorer" in link]  # none by default


def test_page_reads_without_javascript(client: Client, deployment: Deployment) -> None:
    html = client.get(deployment.orders["valid"].verify_path).text
    tags = elements(html)
    scripts = [attrs for tag, attrs in tags if tag == "script"]
    assert [s.get("type") for s in scripts] == ["application/json", None, "module"]
    assert scripts[1]["src"].startswith("/static/app.js?v=") and "defer" in scripts[1]
    assert scripts[2]["src"] == "/verificar/check.js"  # the signed QR's check: only with a #fragment
    assert "<noscript>" in html and deployment.reader().state(deployment.orders["valid"].token_id).document_hash.hex() \
        in html.split("<noscript>")[1]
    # the file input is a plain form control; the published-document check has a no-JS link
    assert ("input", {"id": "pdf", "name": "pdf", "type": "file", "accept": "application/pdf,.pdf"}) in tags
    checked = client.get(deployment.orders["valid"].verify_path + "?doc=1")
    assert "El PDF publicado es el original registrado." in page_text(checked.text)


def test_order_page_gives_the_signed_qr_check_what_the_signature_covers(client: Client,
                                                                        deployment: Deployment) -> None:
    """/verificar/check.js compares a signed QR's payload with the page's record: the keccak of the record's
    canonical bytes, the registrar, the registry and the chain (issue 17's fourth check)."""
    from eth_utils.crypto import keccak

    valid = deployment.orders["valid"]
    html = client.get(valid.verify_path).text
    data = json.loads(html.split('<script type="application/json" id="pc-data">')[1].split("</script>")[0])
    record = deployment.reader().read(valid.token_id)
    assert data["record_hash"] == "0x" + keccak(record.order.canonical_bytes()).hex()
    assert (data["registrar"], data["contract"], data["chain_id"]) == \
        (record.registrar, deployment.registry.address, 31337)
    assert 'id="firma" data-state="none" hidden' in html
    script = client.get("/verificar/check.js")
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")


def test_english_by_accept_language_and_by_switch(client: Client, deployment: Deployment) -> None:
    path = deployment.orders["valid"].verify_path
    english = client.get(path, headers={"Accept-Language": "en-US,en;q=0.9"})
    assert english.headers["content-language"] == "en"
    assert "Purchase order registered and valid" in english.text
    assert "15 calendar days" in english.text and "20 November 2026" in english.text
    assert "Accept-Language" in english.headers["vary"]
    preferred = client.get(path, headers={"Accept-Language": "fr;q=1, es-PE;q=0.5, en;q=0.4"})
    assert preferred.headers["content-language"] == "es-PE"
    switched = client.get(path + "?lang=en")
    assert "Purchase order registered and valid" in switched.text
    assert client.get(path + "?lang=es", headers={"Accept-Language": "en"}).headers["content-language"] == "es-PE"
    spanish = client.get(path)
    switch = [attrs for tag, attrs in elements(spanish.text) if tag == "a" and attrs.get("hreflang") == "en"]
    assert switch and switch[0]["href"] == path + "?lang=en"
    # internal links keep an explicitly chosen language
    assert 'href="/buscar?lang=en"' in switched.text


def test_annulled_order_says_so_with_reason_and_date(client: Client, deployment: Deployment) -> None:
    response = client.get(deployment.orders["annulled"].verify_path)
    text = page_text(response.text)
    assert "Orden de compra ANULADA" in text
    assert "Estado: anulada" in text
    assert ANNUL_REASON in text  # shown as text…
    assert "<img src=x" not in response.text  # …never as markup
    assert "Fecha de anulación" in text and "(UTC−5)" in text
    data = client.get(f"/api/orders/{deployment.orders['annulled'].token_id}").json()
    assert data["status"] == "annulled" and data["annul_reason"] == ANNUL_REASON
    assert data["status_changed_at"] > 0


def test_superseded_order_links_its_replacement(client: Client, deployment: Deployment) -> None:
    old, new = deployment.orders["old"], deployment.orders["replacement"]
    html = client.get(old.verify_path).text
    assert "Orden de compra REEMPLAZADA" in page_text(html)
    links = [attrs.get("href") for tag, attrs in elements(html) if tag == "a"]
    assert new.verify_path in links
    replacement = client.get(new.verify_path).text
    assert "Orden de compra registrada y vigente" in page_text(replacement)
    assert "Reemplaza a" in page_text(replacement)
    assert old.verify_path in [attrs.get("href") for tag, attrs in elements(replacement) if tag == "a"]
    assert client.get(f"/api/orders/{old.token_id}").json()["replaced_by"] == f"0x{new.token_id:064x}"


def test_unregistered_order_is_404_with_a_clear_verdict(client: Client) -> None:
    response = client.get("/o/20131370998/OC-NO-EXISTE")
    assert response.status_code == 404
    text = page_text(response.text)
    assert "Orden no registrada" in text and "OC-NO-EXISTE" in text and "20131370998" in text
    assert client.get("/o/20131370998/<script>x</script>").text.count("<script>x") == 0


# --------------------------------------------------------------------------------------------------
# Untrusted text


def test_markup_from_the_chain_is_escaped_everywhere(client: Client, deployment: Deployment) -> None:
    order = deployment.orders["xss"]
    response = client.get(order.verify_path)
    assert response.status_code == 200
    html = response.text
    for payload in (PAYLOAD_SCRIPT, PAYLOAD_IMG, PAYLOAD_ATTR, "</script><script>", "<u>UNIDAD</u>"):
        assert payload not in html, payload
    text = page_text(html)
    for shown in (PAYLOAD_SCRIPT, PAYLOAD_IMG, PAYLOAD_ATTR, "<u>UNIDAD</u>", "OC-XSS-1", "{{7*7}}"):
        assert shown in text, shown  # the registrar's text is shown exactly, as text
    tags = elements(html)
    scripts = [attrs for tag, attrs in tags if tag == "script"]  # only ours: the data block and two files
    assert [(attrs.get("type"), (attrs.get("src") or "").split("?")[0]) for attrs in scripts] == \
        [("application/json", ""), (None, "/static/app.js"), ("module", "/verificar/check.js")]
    assert not [(tag, name) for tag, attrs in tags for name in attrs if name.startswith("on")]
    assert {tag for tag, _ in tags} <= {"html", "head", "meta", "title", "link", "style", "body", "header", "a",
                                       "nav", "main", "section", "h1", "h2", "h3", "span", "p", "strong", "label",
                                       "input", "div", "noscript", "code", "dl", "dt", "dd", "br", "table", "thead",
                                       "tr", "th", "tbody", "td", "ul", "li", "script", "footer", "bdi"}
    links = [attrs.get("href") or "" for tag, attrs in tags if tag == "a"]
    assert not [link for link in links if link.lower().startswith(("javascript:", "data:"))]
    # JSON inside the page goes through |tojson: no way out of its <script type="application/json">
    data_block = html.split('<script type="application/json" id="pc-data">')[1].split("</script>")[0]
    assert "<" not in data_block and json.loads(data_block)["sha256"]
    # the JSON API returns the text as it is
    api = client.get(f"/api/orders/{order.token_id}")
    assert api.json()["buyer"]["name"] == PAYLOAD_SCRIPT
    assert api.headers["content-type"] == "application/json"


def test_javascript_document_url_is_refused_by_validation() -> None:
    for url in ("javascript:alert(1)", "JaVaScRiPt:alert(1)", "data:text/html,<script>alert(1)</script>",
                "http://x y", "ftp://example.pe/a.pdf"):
        with pytest.raises(InvalidOrder, match="document_url"):
            parse_order(reference_order(document_url=url))


def test_a_non_http_document_address_is_never_a_link(rpc: Rpc, tmp_path: Path) -> None:
    # document_url is validated, but the store's base URI is the admin's text: it may say anything
    account = funded_account(rpc)
    registry, _ = Registry.deploy(Transactor(rpc, account, network("local")),
                                  document_base_uri="javascript:alert(1)//")
    order = parse_order(reference_order(order_number="OC-JS-BASE"))
    registry.register(order, hashlib.sha256(b"x").digest())
    app = create_app(lambda: Registry(Rpc(rpc.url), registry.address, from_block=registry.from_block),
                     PageSettings(base_url=BASE))
    web = Client(app)
    try:
        html = web.get(order.verify_path).text
        links = [attrs.get("href") or "" for tag, attrs in elements(html) if tag == "a"]
        assert not [link for link in links if "javascript" in link.lower()]
        assert "javascript:alert(1)//hl:" in page_text(html)  # shown as text
        assert "no es un enlace web válido" in page_text(html)
        check = web.get(f"/api/orders/{order.token_id}/document").json()
        assert check["outcome"] == "refused"
    finally:
        web.close()


# --------------------------------------------------------------------------------------------------
# Headers and limits


def test_security_headers_on_pages_api_and_errors(client: Client, deployment: Deployment) -> None:
    page = client.get(deployment.orders["valid"].verify_path)
    csp = page.headers["content-security-policy"]
    directives = dict(part.strip().split(" ", 1) for part in csp.split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'" and directives["base-uri"] == "'none'"
    assert "unsafe" not in csp and "http" not in csp  # no inline script, no third-party origin
    style = page.text.split("<style>")[1].split("</style>")[0]
    digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    assert directives["style-src"] == f"'sha256-{digest}'"
    assert not re.search(r"\sstyle=", page.text)
    assert not re.search(r"(src|href)=\"(https?:)?//", page.text.replace(deployment.url("valid").split("/o/")[0], ""))
    for response in (page, client.get("/api/orders/1"), client.get("/nope"), client.get("/openapi.json"),
                     client.get("/static/app.js?v=1")):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"
        assert "content-security-policy" in response.headers
    assert client.get("/nope").status_code == 404


def test_request_size_limits(client: Client, deployment: Deployment) -> None:
    path = deployment.orders["valid"].verify_path
    assert client.request("POST", path, content=b"x" * 100_000).status_code == 413
    assert client.request("POST", path, content=b"x").status_code == 405
    assert client.get("/o/20131370998/" + "A" * 5000).status_code == 414
    assert client.get("/buscar?q=" + "1" * 3000).status_code == 414


def test_static_files_are_immutable_and_the_page_is_light(client: Client, deployment: Deployment) -> None:
    page = client.get(deployment.orders["valid"].verify_path)
    script = re.search(r'src="(/static/app\.js\?v=\w+)"', page.text)
    icon = re.search(r'href="(/static/favicon\.svg\?v=\w+)"', page.text)
    assert script and icon
    js = client.get(script.group(1))
    assert js.headers["content-type"].startswith("text/javascript")
    assert js.headers["cache-control"] == "public, max-age=31536000, immutable"
    weight = len(page.content) + len(js.content) + len(client.get(icon.group(1)).content)
    assert weight < 100 * 1024, weight
    assert page.headers["content-encoding"] == "gzip"  # httpx asks for it; the page is kept compressed too
    again = client.get(deployment.orders["valid"].verify_path, headers={"If-None-Match": page.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    plain = client.get(deployment.orders["valid"].verify_path, headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers and plain.headers["etag"] != page.headers["etag"]


# --------------------------------------------------------------------------------------------------
# JSON API, search, documents


def test_api_order_and_token_metadata(client: Client, deployment: Deployment) -> None:
    order = deployment.orders["valid"]
    record = deployment.reader().read(order.token_id)
    for ref in (str(order.token_id), f"0x{order.token_id:064x}", f"0X{order.token_id:X}"):
        data = client.get(f"/api/orders/{ref}").json()
        assert data["order_number"] == order.order_number
    response = client.get(f"/api/orders/{order.token_id}")
    assert response.headers["access-control-allow-origin"] == "*"
    data = response.json()
    assert {k: data[k] for k in order.to_json()} == order.to_json()
    assert data["status"] == "valid" and data["tx_hash"] == record.tx_hash
    assert data["registrar"] == record.registrar and data["contract"] == deployment.registry.address
    assert data["chain_id"] == 31337 and data["verify_url"] == BASE + order.verify_path
    assert data["sha256"] == record.state.document_hash.hex() and data["hashlink"].startswith("hl:zQm")
    meta = client.get(f"/api/tokens/{order.token_id}").json()
    assert meta["name"] == "Orden de compra OC-2026-004512"
    assert meta["external_url"] == BASE + order.verify_path
    assert {"trait_type": "status", "value": "valid"} in meta["attributes"]
    assert client.get("/api/orders/12345").status_code == 404
    assert client.get("/api/orders/xyz").status_code == 400
    assert client.get(f"/api/orders/{2**256}").status_code == 400
    assert client.get("/api/orders/12345").json()["error"] == "not_registered"


def test_openapi_and_healthz(client: Client, deployment: Deployment) -> None:
    spec = client.get("/openapi.json").json()
    assert set(spec["paths"]) == {"/api/orders/{token_id}", "/api/orders/{token_id}/document",
                                  "/api/tokens/{token_id}", "/healthz"}
    assert "OrderRecord" in spec["components"]["schemas"]
    token = deployment.orders["valid"].token_id
    for path in spec["paths"]:  # every documented route is served, with JSON
        response = client.get(path.replace("{token_id}", str(token)))
        assert response.status_code == 200 and response.headers["content-type"] == "application/json", path
    health = client.get("/healthz")
    assert health.status_code == 200 and health.json()["status"] == "ok" and health.json()["chain_id"] == 31337
    assert client.get("/docs").status_code == 404  # no Swagger UI: it would load third-party scripts


def test_nodes_that_do_not_answer_alike_make_the_order_could_not_be_checked(deployment: Deployment,
                                                                            tmp_path: Path) -> None:
    """With several nodes (PERU_COMPRAS_RPC="a,b") the page reads through all of them; when one does not give
    the same answer (here: it is down) the order is "could not be checked", naming the node — never green."""
    dead_port = free_port()
    settings = Settings(home=tmp_path / "home", rpc=deployment.rpc_url, read_rpcs=(f"http://127.0.0.1:{dead_port}",),
                        registry=deployment.registry.address, base_url=BASE)
    web = Client(app_from_workspace(Workspace(settings)))
    valid = deployment.orders["valid"]
    try:
        page = web.get(valid.verify_path)
        text = page_text(page.text)
        assert page.status_code == 503 and "No se pudo comprobar" in text and f"127.0.0.1:{dead_port}" in text
        assert "vigente" not in text.lower() and "verdict warn" in page.text
        english = web.get(valid.verify_path + "?lang=en")
        assert english.status_code == 503 and "Could not be checked" in page_text(english.text)
        answer = web.get(f"/api/orders/{valid.token_id}")
        assert answer.status_code == 503 and answer.json()["error"] == "not_checked"
        assert f"127.0.0.1:{dead_port}" in answer.json()["detail"]
    finally:
        web.close()
    one = Client(app_from_workspace(Workspace(dataclasses.replace(settings, read_rpcs=()))))
    try:
        assert one.get(valid.verify_path).status_code == 200  # the same settings with the live node only
    finally:
        one.close()


def test_healthz_is_503_when_the_node_is_unreachable(deployment: Deployment) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    app = create_app(lambda: Registry(Rpc(dead, timeout=1, attempts=1), deployment.registry.address),
                     PageSettings(base_url=BASE))
    web = Client(app)
    try:
        response = web.get("/healthz")
        assert response.status_code == 503 and response.json()["status"] == "unavailable"
        page = web.get(deployment.orders["valid"].verify_path)
        assert page.status_code == 503 and "No se puede consultar la blockchain" in page_text(page.text)
        assert web.get(f"/api/orders/{deployment.orders['valid'].token_id}").status_code == 503
    finally:
        web.close()


def test_search_by_order_token_and_hash(client: Client, deployment: Deployment) -> None:
    order = deployment.orders["valid"]
    digest = deployment.reader().state(order.token_id).document_hash
    home = client.get("/")
    assert home.status_code == 200 and "Buscar una orden de compra" in home.text
    for query in ({"entidad": "20131370998", "numero": order.order_number},
                  {"entidad": " 2013 1370 998 ", "numero": f" {order.order_number} "},
                  {"q": str(order.token_id)}, {"q": f"0x{order.token_id:064x}"}, {"q": hashlink(digest)},
                  {"q": digest.hex()}, {"q": f"20131370998/{order.order_number}"}):
        response = client.get("/buscar", params=query, follow_redirects=False)
        assert response.status_code == 303, query
        assert response.headers["location"] == order.verify_path
    english = client.get("/buscar", params={"q": str(order.token_id), "lang": "en"}, follow_redirects=False)
    assert english.headers["location"] == order.verify_path + "?lang=en"
    missing = client.get("/buscar", params={"q": "hl:zQmWvQxTqbG2Z9HPJgG57jjwR154cKhbtJenbyYTWkjgF3e"})
    assert missing.status_code == 404 and "No se encontró" in page_text(missing.text)
    bad = client.get("/buscar", params={"q": "<img src=x onerror=alert(1)>"})
    assert bad.status_code == 400 and "<img src=x" not in bad.text and "no es un token ID" in page_text(bad.text)
    slash = client.get("/buscar", params={"q": "<script>alert(1)</script>"})  # read as ENTITY/NUMBER
    assert slash.status_code == 404 and "<script>alert" not in slash.text
    assert client.get("/buscar", params={"entidad": "20131370998"}).status_code == 400
    assert client.get(f"/t/{order.token_id}", follow_redirects=False).headers["location"] == order.verify_path


def test_stored_documents_are_served_immutable(client: Client, deployment: Deployment) -> None:
    document = deployment.pdfs["valid"]
    digest = hashlib.sha256(document).digest()
    response = client.get(f"/d/{hashlink(digest)}")
    assert response.status_code == 200 and response.content == document
    assert response.headers["content-type"] == "application/pdf"
    assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert response.headers["x-content-type-options"] == "nosniff"
    # a registrar's (or supplier's) file: downloaded, and in a sandbox with nothing allowed (issue 14)
    assert response.headers["content-disposition"] == f'attachment; filename="{digest.hex()[:16]}.pdf"'
    assert response.headers["content-security-policy"] == "sandbox; default-src 'none'; frame-ancestors 'none'"
    again = client.get(f"/d/{hashlink(digest)}", headers={"If-None-Match": response.headers["etag"]})
    assert again.status_code == 304
    assert client.get(f"/d/{hashlink(hashlib.sha256(b'none').digest())}").status_code == 404
    assert client.get("/d/not-a-hashlink").status_code == 404


# --------------------------------------------------------------------------------------------------
# The published-document check


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_published_check_reads_the_built_in_store(deployment: Deployment, tmp_path: Path) -> None:
    document = deployment.pdfs["valid"]
    digest = hashlib.sha256(document).digest()
    store = LocalStore(tmp_path / "docs", BASE)
    store.put(document)
    checker = DocumentChecker(store, BASE)
    url = store.url(digest)
    assert run(checker.check(1, url, digest, "c")).outcome == "original"
    store.path(digest).write_bytes(document + b"%tampered")
    assert DocumentChecker(store, BASE).cached(1, url) is None
    assert run(DocumentChecker(store, BASE).check(1, url, digest, "c")).outcome == "altered"
    store.path(digest).unlink()
    assert run(DocumentChecker(store, BASE).check(1, url, digest, "c")).outcome == "missing"


def test_published_check_fetches_other_hosts_with_limits(deployment: Deployment) -> None:
    document = deployment.pdfs["valid"]
    digest = hashlib.sha256(document).digest()
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        path = request.url.path
        if path == "/ok.pdf":
            return httpx.Response(200, content=document)
        if path == "/changed.pdf":
            return httpx.Response(200, content=document[:-10])
        if path == "/big.pdf":
            return httpx.Response(200, content=b"%PDF-" + b"0" * 300_000)
        if path == "/gone.pdf":
            return httpx.Response(404)
        if path == "/inside":
            return httpx.Response(302, headers={"location": "http://10.0.0.1/ok.pdf"})
        return httpx.Response(500)

    def checker(**kwargs: Any) -> DocumentChecker:
        return DocumentChecker(None, BASE, transport=httpx.MockTransport(handler), max_bytes=200_000, **kwargs)

    public = "http://93.184.215.14"  # a literal public address: no DNS, the mock transport answers
    assert run(checker().check(1, public + "/ok.pdf", digest, "c")).outcome == "original"
    assert run(checker().check(1, public + "/changed.pdf", digest, "c")).outcome == "altered"
    assert run(checker().check(1, public + "/big.pdf", digest, "c")).outcome == "too_large"
    assert run(checker().check(1, public + "/gone.pdf", digest, "c")).outcome == "missing"
    assert run(checker().check(1, public + "/error", digest, "c")).outcome == "unreachable"
    # never the server's own network: loopback, private ranges, link-local (also after a redirect)
    for url in ("http://127.0.0.1:8545/x.pdf", "http://10.1.2.3/x.pdf", "http://169.254.169.254/latest",
                "http://[::1]/x.pdf", "http://localhost/x.pdf", "http://user:pw@93.184.215.14/x.pdf"):
        assert run(checker().check(1, url, digest, "c")).outcome == "refused", url
    before = len(seen)
    result = run(checker().check(1, public + "/inside", digest, "c"))
    assert result.outcome == "refused" and len(seen) == before + 1  # the private target was not requested
    # rate limits: per client, then overall; a fresh answer is reused without counting
    limited = checker(per_client=TokenBucket(rate=0, burst=2))
    outcomes = [run(limited.check(n, public + "/ok.pdf", digest, "same")).outcome for n in range(3)]
    assert outcomes == ["original", "original", "rate_limited"]
    assert run(limited.check(0, public + "/ok.pdf", digest, "same")).outcome == "original"  # cached
    assert run(limited.check(9, public + "/ok.pdf", digest, "other")).outcome == "original"


def test_published_check_answers_in_time_and_bounds_its_downloads() -> None:
    document = b"%PDF-1.4\n% published\n%%EOF\n"
    digest = hashlib.sha256(document).digest()
    release = threading.Event()

    def handler(request: httpx.Request) -> httpx.Response:  # runs in the checker's download thread
        if request.url.path == "/slow.pdf":
            release.wait(10)
        return httpx.Response(200, content=document)

    checker = DocumentChecker(None, BASE, transport=httpx.MockTransport(handler), timeout=0.3, concurrency=1)
    public = "http://93.184.215.14"

    async def scenario() -> None:
        started = time.monotonic()
        slow = await checker.check(1, public + "/slow.pdf", digest, "c")
        assert (slow.outcome, slow.detail) == ("unreachable", "timeout")
        assert time.monotonic() - started < 2
        # the abandoned download still holds the only slot: the next one waits for it, then runs
        waiting = asyncio.ensure_future(checker.check(2, public + "/ok.pdf", digest, "c"))
        await asyncio.sleep(0.3)
        assert not waiting.done()
        release.set()
        assert (await asyncio.wait_for(waiting, 5)).outcome == "original"

    run(scenario())


def test_published_check_api_is_rate_limited(deployment: Deployment) -> None:
    app = create_app(lambda: deployment.reader(), PageSettings(base_url="http://elsewhere.example"))
    app.page.checker.per_client = TokenBucket(rate=0, burst=1)
    web = Client(app)
    try:
        token = deployment.orders["valid"].token_id
        first = web.get(f"/api/orders/{token}/document")  # base URL differs: a fetch (refused: not public)
        assert first.status_code == 200 and first.json()["outcome"] in ("refused", "unreachable")
        other = deployment.orders["replacement"].token_id
        limited = web.get(f"/api/orders/{other}/document")
        assert limited.status_code == 429 and limited.headers["retry-after"] == "60"
    finally:
        web.close()


# --------------------------------------------------------------------------------------------------
# Caching: a page view costs no chain read once the order is known


def test_reads_are_cached_and_status_changes_show_up(rpc: Rpc, tmp_path: Path) -> None:
    account = funded_account(rpc)
    registry, _ = Registry.deploy(Transactor(rpc, account, network("local")), document_base_uri=BASE + "/d/")
    deployment = Deployment(rpc.url, registry, LocalStore(tmp_path / "docs", BASE), BASE)
    order = parse_order(reference_order(order_number="OC-CACHE-1"))
    deployment.register("one", order)
    counting = CountingRpc(rpc.url)
    app = create_app(lambda: deployment.reader(counting), PageSettings(base_url=BASE, sync_interval=0))
    web = Client(app)
    try:
        assert "registrada y vigente" in web.get(order.verify_path).text
        counting.calls.clear()
        for _ in range(20):
            assert web.get(order.verify_path).status_code == 200
            assert web.get(f"/api/orders/{order.token_id}").status_code == 200
        # only the block clock (sync_interval=0 here: once per request); no record or status read
        assert set(counting.calls) == {"eth_blockNumber"}
        deployment.registry.annul(order.token_id, "Duplicada")
        counting.calls.clear()
        assert "ANULADA" in web.get(order.verify_path).text
        assert counting.calls.count("eth_getLogs") >= 1  # the new block's status events
        assert web.get(f"/api/orders/{order.token_id}").json()["annul_reason"] == "Duplicada"
    finally:
        web.close()


def test_fast_routes_answer_exactly_as_the_router(deployment: Deployment) -> None:
    app = create_app(lambda: deployment.reader(), PageSettings(base_url=BASE, store=deployment.store))
    web = Client(app)
    valid, xss = deployment.orders["valid"], deployment.orders["xss"]
    paths = [valid.verify_path, valid.verify_path + "?lang=en", xss.verify_path, "/o/20131370998/NOPE",
             "/o/20131370998/", f"/api/orders/{valid.token_id}", f"/api/orders/0x{valid.token_id:064x}",
             "/api/orders/12345", "/api/orders/xyz", f"/api/orders/{2**256}", f"/api/tokens/{valid.token_id}",
             "/api/tokens/1"]
    try:
        fast = [web.get(path) for path in paths]
        fast_routes, app.fast = app.fast, None
        routed = [web.get(path) for path in paths]
        app.fast = fast_routes
    finally:
        web.close()
    for path, one, other in zip(paths, fast, routed, strict=True):
        assert (one.status_code, one.content) == (other.status_code, other.content), path
        assert {k: v for k, v in one.headers.items() if k != "date"} == \
            {k: v for k, v in other.headers.items() if k != "date"}, path


def test_block_clock_is_read_at_most_once_per_interval(deployment: Deployment) -> None:
    counting = CountingRpc(deployment.rpc_url)
    app = create_app(lambda: deployment.reader(counting), PageSettings(base_url=BASE, sync_interval=60))
    web = Client(app)
    try:
        path = deployment.orders["valid"].verify_path
        web.get(path)
        counting.calls.clear()
        for _ in range(50):
            web.get(path)
        assert counting.calls == []
    finally:
        web.close()


# --------------------------------------------------------------------------------------------------
# The detached server (what `peru-compras demo` starts)


def test_server_limits_come_from_the_settings_not_the_environment(monkeypatch: pytest.MonkeyPatch,
                                                                  tmp_path: Path) -> None:
    """The server reads its limits from the Settings it is given (flags > env > toml, resolved once by
    load_settings), never from os.environ itself: a stale variable in the process changes nothing."""
    monkeypatch.setenv("PERU_COMPRAS_KEEP_ALIVE_TIMEOUT", "not a number")
    monkeypatch.setenv("PERU_COMPRAS_TRUSTED_PROXIES", "10.9.9.9")
    app = create_app(lambda: pytest.fail("no chain read"), PageSettings(base_url=BASE))
    given = uvicorn_config(app, "127.0.0.1", 8000, settings=Settings(home=tmp_path, keep_alive_timeout=7,
                                                                     trusted_proxies="192.0.2.1"))
    assert (given.timeout_keep_alive, given.forwarded_allow_ips) == (7, "192.0.2.1")
    default = uvicorn_config(app, "127.0.0.1", 8000)
    assert (default.timeout_keep_alive, default.forwarded_allow_ips) == (5, "127.0.0.1,::1")


def test_start_detached_serves_the_workspace_and_is_reused(deployment: Deployment, tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    settings = Settings(home=tmp_path / "home", rpc=deployment.rpc_url, registry=deployment.registry.address,
                        base_url=base)
    workspace = Workspace(settings)
    order = deployment.orders["valid"]
    served = start_detached(workspace)
    try:
        assert served.url == base and not served.reused
        state = json.loads((settings.home / "web.json").read_text())
        assert state["pid"] == served.pid and state["url"] == base
        page = httpx.get(served.page(order.verify_path), timeout=10)
        assert page.status_code == 200 and "Orden de compra registrada y vigente" in page.text
        assert httpx.get(base + "/healthz", timeout=5).status_code == 200
        again = start_detached(workspace)
        assert again.reused and again.pid == served.pid
    finally:
        assert stop_detached(settings.home)
    assert not (settings.home / "web.json").exists()


def test_pdf_fixture_is_what_the_page_checks(deployment: Deployment) -> None:
    # the browser test relies on these: the stamped PDF is the registered one, the altered copy is not
    state = deployment.reader().state(deployment.orders["valid"].token_id)
    assert hashlib.sha256(deployment.pdfs["valid"]).digest() == state.document_hash
    assert hashlib.sha256(deployment.pdfs["altered"]).digest() != state.document_hash
