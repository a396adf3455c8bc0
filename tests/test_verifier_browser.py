"""The offline verifier (/verificar) and the order page's fourth check in real Chromium (Debian's, driven by
PyPI playwright) at phone size, against a real uvicorn server and a real Anvil.

Signed QRs are made here with eth_account's sign_typed_data and an encoder written from the README's
description of the payload — independent of peru_compras.signed_qr — so the browser is checked against the
format, not against our own Python. The camera test feeds Chromium's fake capture device a video made with
ffmpeg from a 150-dpi render (pdftoppm) of a stamped page.
"""

from __future__ import annotations

import base64
import datetime
import json
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount
from eth_utils.crypto import keccak

from peru_compras.chain.client import Registry
from peru_compras.chain.networks import network
from peru_compras.chain.node import free_port
from peru_compras.chain.rpc import Rpc
from peru_compras.chain.transactions import Transactor
from peru_compras.demo import sample_orders
from peru_compras.order import Order, parse_order
from peru_compras.pdf import stamp_pdf
from peru_compras.render import render_order
from peru_compras.store import LocalStore
from peru_compras.web.app import PageSettings, create_app

from .conftest import funded_account
from .threaded_server import ThreadedServer

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
DOCS = ROOT / "docs"
PHONE = {"width": 360, "height": 780}
VENDOR = ROOT / "peru_compras" / "web" / "static" / "verificar" / "vendor"
GREEN, RED = "rgb(11, 93, 42)", "rgb(161, 17, 27)"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed at /usr/bin/chromium "
                                                     "(apt-get install -y chromium; scripts/bootstrap --test)"),
    pytest.mark.skipif(not (VENDOR / "noble-secp256k1" / "index.js").exists(),
                       reason="the verifier's vendor files are missing: run scripts/bootstrap"),
]


# -- signed QRs, written from the README's description -----------------------------------------------------

ORDER_TYPE = [("orderKey", "string"), ("issuedOn", "string"), ("supplier", "string"), ("total", "string"),
              ("currency", "string"), ("items", "uint16"), ("recordHash", "bytes32")]


def facts_of(order: Order) -> dict[str, Any]:
    supplier = order.supplier
    return {"orderKey": order.key, "issuedOn": order.issued_on,
            "supplier": supplier.id if supplier.scheme == "PE-RUC" else f"{supplier.scheme}:{supplier.id}",
            "total": order.total_amount, "currency": order.currency, "items": len(order.items),
            "recordHash": keccak(order.canonical_bytes())}


def sign(facts: dict[str, Any], key: bytes, chain_id: int, registry: str) -> bytes:
    message = encode_typed_data(full_message={
        "types": {"EIP712Domain": [{"name": "name", "type": "string"}, {"name": "version", "type": "string"},
                                   {"name": "chainId", "type": "uint256"},
                                   {"name": "verifyingContract", "type": "address"}],
                  "Order": [{"name": name, "type": kind} for name, kind in ORDER_TYPE]},
        "primaryType": "Order",
        "domain": {"name": "peru-compras", "version": "1", "chainId": chain_id, "verifyingContract": registry},
        "message": facts})
    return bytes(Account.sign_message(message, key).signature)


def leb128(value: int) -> bytes:
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        out.append(low | (0x80 if value else 0))
        if not value:
            return bytes(out)


def payload(facts: dict[str, Any], signature: bytes) -> bytes:
    text_supplier = not (facts["supplier"].isdigit() and len(facts["supplier"]) == 11)
    other_currency = facts["currency"] != "PEN"
    header = 0b0010_0000 | (0b1000 if text_supplier else 0) | (0b100 if other_currency else 0) | (signature[64] - 27)
    days = (datetime.date.fromisoformat(facts["issuedOn"]) - datetime.date(1970, 1, 1)).days
    out = bytes([header]) + days.to_bytes(2, "big")
    if text_supplier:
        name = facts["supplier"].encode()
        out += bytes([len(name)]) + name
    else:
        out += int(facts["supplier"]).to_bytes(5, "big")
    if other_currency:
        out += facts["currency"].encode()
    whole, _, fraction = facts["total"].partition(".")
    out += bytes([len(fraction)]) + leb128(int(whole + fraction))
    return out + leb128(facts["items"]) + facts["recordHash"] + signature[:64]


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def signed_text(url: str, facts: dict[str, Any], key: bytes, chain_id: int, registry: str) -> str:
    return url + "#" + b64(payload(facts, sign(facts, key, chain_id, registry)))


# -- the site ------------------------------------------------------------------------------------------------


@dataclass
class Site:
    base_url: str
    registry: Registry
    chain_id: int
    account: LocalAccount
    former: LocalAccount  # held the registrar role, then lost it (at `revoked_at`)
    revoked_at: int = 0
    orders: dict[str, Order] = field(default_factory=dict)
    pdfs: dict[str, bytes] = field(default_factory=dict)

    def qr(self, name: str, *, base_url: str | None = None, key: bytes | None = None, **changes: Any) -> str:
        """The signed QR text of an order (its facts changed by `changes` before signing)."""
        order = self.orders[name]
        facts = {**facts_of(order), **changes}
        return signed_text((base_url or self.base_url) + order.verify_path, facts, key or bytes(self.account.key),
                           self.chain_id, self.registry.address)


def tampered(text: str, facts: dict[str, Any]) -> str:
    """`text` with its payload rebuilt from `facts` but keeping the original signature."""
    url, _, fragment = text.partition("#")
    raw = base64.urlsafe_b64decode(fragment + "=" * (-len(fragment) % 4))
    signature = raw[-64:] + bytes([27 + (raw[0] & 1)])
    return url + "#" + b64(payload(facts, signature))


def deploy_site(rpc: Rpc, folder: Path, port: int) -> tuple[Site, Any]:
    """A registry on `rpc` with a valid, an annulled, a superseded order and its replacement, their stamped PDFs
    (the QR signed where it fits 200 characters) in a built-in store, and the page's app for them."""
    base_url = f"http://127.0.0.1:{port}"
    account = funded_account(rpc)
    registry, _ = Registry.deploy(Transactor(rpc, account, network("local")), document_base_uri=base_url + "/d/")
    store = LocalStore(folder / "documents", base_url)
    result = Site(base_url, registry, int(rpc.call("eth_chainId"), 16), account, Account.create())
    registry.grant("registrar", result.former.address)
    result.revoked_at = registry.revoke("registrar", result.former.address).block_number
    samples = sample_orders()
    replacement = parse_order({**samples[2].to_json(), "order_number": samples[2].order_number + "-R1"})
    for name, order in (("valid", samples[0]), ("annulled", samples[1]), ("old", samples[2]),
                        ("replacement", replacement)):
        result.orders[name] = order
        text = result.qr(name)  # over 200 characters (a long order number): registration stamps the plain URL
        text = text if len(text) <= 200 else base_url + order.verify_path
        document = stamp_pdf(render_order(order, verify_url=base_url + order.verify_path), text, order=order)
        digest = store.put(document)
        if name == "replacement":
            registry.supersede(samples[2].token_id, order, digest)
        else:
            registry.register(order, digest)
        result.pdfs[name] = document
    registry.annul(samples[1].token_id, "Monto errado")
    app = create_app(lambda: Registry(Rpc(rpc.url), registry.address, from_block=registry.from_block),
                     PageSettings(base_url=base_url, store=store))
    return result, app


def render_page(pdf: bytes, folder: Path) -> Path:
    """The first page at 150 dpi (pdftoppm): 1240 x 1754 px for A4."""
    (folder / "page.pdf").write_bytes(pdf)
    subprocess.run(["pdftoppm", "-r", "150", "-f", "1", "-l", "1", "-png", "-singlefile", str(folder / "page.pdf"),
                    str(folder / "page")], check=True, timeout=60)
    return folder / "page.png"


def make_camera_video(pdf: bytes, folder: Path) -> Path:
    """A 2-second y4m video of the stamped page's lower half as a phone held over the paper sees it: the page
    rendered at 150 dpi by pdftoppm (1240 x 1754 px), cropped and scaled to a 1280-px-wide camera frame."""
    render_page(pdf, folder)
    video = folder / "camera.y4m"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-loop", "1", "-i", str(folder / "page.png"), "-t", "2",
                    "-r", "10", "-vf", "crop=1240:876:0:878,scale=1280:-2,format=yuv420p", str(video)],
                   check=True, timeout=120)
    return video


def chromium_args(video: Path) -> list[str]:
    return ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--no-first-run", "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
            f"--use-file-for-fake-video-capture={video}"]


@pytest.fixture(scope="module")
def site(rpc: Rpc, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    port = free_port()
    result, app = deploy_site(rpc, tmp_path_factory.mktemp("verifier"), port)
    with ThreadedServer(app, port):
        yield result


@pytest.fixture(scope="module")
def camera_video(site: Site, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_camera_video(site.pdfs["valid"], tmp_path_factory.mktemp("camera"))


@pytest.fixture(scope="module")
def browser(camera_video: Path) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=chromium_args(camera_video))
        yield chromium
        chromium.close()


@pytest.fixture
def phone(browser: Any, site: Site) -> Iterator[Any]:
    context = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True,
                                  locale="es-PE", permissions=["camera"])
    yield context
    context.close()


def shot(page: Any, name: str, *, docs: bool = False) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(ARTIFACTS / name))
    if docs and os.environ.get("PERU_COMPRAS_UPDATE_DOCS"):  # docs/ changes only when asked, not on every run
        shutil.copyfile(ARTIFACTS / name, DOCS / name)


def open_app(context: Any, site: Site) -> Any:
    page = context.new_page()
    page.goto(site.base_url + "/verificar")
    page.locator("body[data-ready='1']").wait_for(timeout=15_000)
    return page


def paste(page: Any, text: str) -> Any:
    """Verify `text` through the paste box and return the verdict box."""
    box = page.locator("#paste-box")
    if box.get_attribute("open") is None:
        page.locator("#paste-box summary").click()
    page.fill("#paste", text)
    page.locator("#verdict").evaluate("e => e.removeAttribute('data-overall')")
    page.locator("#paste-go").click()
    verdict = page.locator("#verdict[data-overall]")
    verdict.wait_for(timeout=10_000)
    # nothing shown (a 42-character address, a long order number) makes the page wider than the phone
    assert page.evaluate("document.documentElement.scrollWidth") <= page.viewport_size["width"]
    return verdict


def contrast(page: Any, selector: str) -> float:
    """WCAG contrast ratio of an element's text colour against the first opaque background behind it."""
    colours = page.locator(selector).first.evaluate("""e => {
        const text = getComputedStyle(e).color;
        let node = e, back = "rgb(255, 255, 255)";
        while (node) {
          const c = getComputedStyle(node).backgroundColor;
          if (c && c !== "rgba(0, 0, 0, 0)" && c !== "transparent") { back = c; break; }
          node = node.parentElement;
        }
        return [text, back];
    }""")

    def luminance(colour: str) -> float:
        channels = [int(part) / 255 for part in colour[colour.index("(") + 1:colour.index(")")].split(",")[:3]]
        linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    light, dark = sorted((luminance(colours[0]), luminance(colours[1])), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def facts_text(page: Any) -> str:
    return str(page.locator("#facts").inner_text())


# -- the tests -------------------------------------------------------------------------------------------------


def test_camera_finds_the_qr_on_the_printed_page_and_shows_the_signed_facts(site: Site, phone: Any) -> None:
    page = open_app(phone, site)
    assert page.locator("body").get_attribute("data-decoder") in ("jsqr", "barcodedetector")
    page.get_by_role("button", name="Escanear con la cámara").click()
    verdict = page.locator("#verdict[data-overall]")
    verdict.wait_for(timeout=30_000)
    order = site.orders["valid"]
    assert verdict.get_attribute("data-overall") == "ok", verdict.inner_text()
    assert verdict.get_attribute("data-status") == "signed"
    assert page.locator("#verdict-title").inner_text() == "Firma válida: compare los datos con el papel"
    assert page.locator("#verdict").evaluate("e => getComputedStyle(e).backgroundColor") == GREEN
    facts = facts_text(page)
    day = order.issued_on.split("-")
    for expected in (order.order_number, f"RUC {order.entity.key}", f"RUC {order.supplier.id}",
                     f"{day[2]}/{day[1]}/{day[0]}", str(len(order.items))):
        assert expected in facts, (expected, facts)
    whole, _, cents = order.total_amount.partition(".")
    assert f"S/ {int(whole):,}" in facts
    assert site.account.address.lower() in page.locator("#checks").inner_text()
    assert page.locator("#camera").is_hidden()  # the camera is stopped once the QR is read
    shot(page, "verificar-online.png", docs=True)


def test_offline_after_one_visit_it_verifies_a_signed_qr_and_refuses_a_tampered_one(site: Site, phone: Any) -> None:
    page = open_app(phone, site)
    page.evaluate("navigator.serviceWorker.ready.then(() => true)")
    page.wait_for_function("navigator.serviceWorker.controller !== null || location.reload()", timeout=15_000)
    block = page.locator("#pack").get_attribute("data-block")
    assert block is not None
    phone.set_offline(True)
    try:
        page.reload()
        page.locator("body[data-ready='1']").wait_for(timeout=15_000)
        assert page.evaluate("navigator.onLine") is False
        assert page.locator("#pack").get_attribute("data-block") == block  # the kept pack, its age shown
        assert "Sin conexión" in page.locator("#pack").inner_text()

        good = site.qr("valid")
        verdict = paste(page, good)
        assert verdict.get_attribute("data-overall") == "ok", verdict.inner_text()
        assert site.orders["valid"].order_number in facts_text(page)
        shot(page, "verificar-offline.png", docs=True)

        facts = facts_of(site.orders["valid"])
        verdict = paste(page, tampered(good, {**facts, "total": "1.00"}))
        assert verdict.get_attribute("data-overall") == "bad"
        assert verdict.get_attribute("data-status") == "unknown_signer"
        assert page.locator("#verdict-title").inner_text() == "Firma de alguien que NO es registrador"
        assert page.locator("#verdict").evaluate("e => getComputedStyle(e).backgroundColor") == RED

        stranger = Account.create()
        verdict = paste(page, site.qr("valid", key=bytes(stranger.key)))
        assert verdict.get_attribute("data-status") == "unknown_signer"
        assert stranger.address.lower() not in page.locator("#checks").inner_text()
        for broken in (good[:-20], good + "A" * 10_000, good.split("#")[0] + "#" + "!" * 146):
            verdict = paste(page, broken[:1024])
            assert verdict.get_attribute("data-overall") == "bad", broken[:60]
        verdict = paste(page, site.base_url + site.orders["valid"].verify_path)  # a plain QR
        assert verdict.get_attribute("data-overall") == "warn"
        assert verdict.get_attribute("data-status") == "not_signed"
    finally:
        phone.set_offline(False)


def test_a_qr_pointing_to_another_host_is_flagged_even_with_a_valid_signature(site: Site, phone: Any) -> None:
    page = open_app(phone, site)
    fake = site.qr("valid", base_url="https://oc-verifica.example")
    verdict = paste(page, fake)
    assert verdict.get_attribute("data-overall") == "bad"
    assert verdict.get_attribute("data-status") == "signed"  # a registrar's QR, re-pointed elsewhere
    assert page.locator("#verdict-title").inner_text() == "QR FALSO: apunta a otro sitio"
    assert "oc-verifica.example" in page.locator("#verdict-body").inner_text()
    assert page.locator("#checks a").count() == 0  # no link to the fake site
    assert contrast(page, "#verdict-title") >= 4.5 and contrast(page, "#checks li.bad") >= 4.5
    shot(page, "verificar-qr-falso.png", docs=True)


def test_status_as_of_the_packs_block_annulled_and_superseded(site: Site, phone: Any) -> None:
    page = open_app(phone, site)
    verdict = paste(page, site.qr("annulled"))
    assert verdict.get_attribute("data-overall") == "bad"
    assert page.locator("#verdict-title").inner_text() == "Orden ANULADA"
    verdict = paste(page, site.qr("old"))
    assert verdict.get_attribute("data-overall") == "warn"
    assert page.locator("#verdict-title").inner_text() == "Orden REEMPLAZADA"
    new_token = "0x" + f"{site.orders['replacement'].token_id:064x}"
    assert "Reemplazada por " + new_token[:10] in page.locator("#checks").inner_text()


def test_an_old_trust_pack_is_said_in_red_and_the_verdict_is_not_green(site: Site, phone: Any) -> None:
    def old_pack(route: Any) -> None:
        response = route.fetch()
        pack = json.loads(response.text())
        stamp = datetime.datetime.fromisoformat(pack["time"].replace("Z", "+00:00")) - datetime.timedelta(days=9)
        pack["time"] = stamp.strftime("%Y-%m-%dT%H:%M:%SZ")
        route.fulfill(response=response, body=json.dumps(pack))

    phone.route("**/trust-pack.json", old_pack)
    page = open_app(phone, site)
    line = page.locator("#pack")
    assert line.get_attribute("data-stale") == "true"
    assert "más de 7 días" in line.inner_text()
    assert line.evaluate("e => getComputedStyle(e).color") == "rgb(138, 15, 24)"
    assert contrast(page, "#pack") >= 4.5
    verdict = paste(page, site.qr("valid"))
    assert verdict.get_attribute("data-overall") == "warn"
    # a longer limit (the setting) makes the same pack acceptable
    page.locator("#settings summary").click()
    page.fill("#max-age", "30")
    page.locator("#max-age").dispatch_event("change")
    assert page.locator("#verdict").get_attribute("data-overall") == "ok"


def test_without_the_vendor_folder_it_says_what_it_cannot_do_and_never_shows_green(site: Site, browser: Any) -> None:
    context = browser.new_context(viewport=PHONE, locale="es-PE", service_workers="block")
    context.route("**/verificar/vendor/**", lambda route: route.fulfill(status=404, body="not found"))
    try:
        page = open_app(context, site)
        notes = page.locator("#notes").inner_text()
        assert "no tiene instalado el lector de QR" in notes
        assert "no tiene instalado el verificador de firmas" in notes
        verdict = paste(page, site.qr("valid"))
        assert verdict.get_attribute("data-overall") == "warn"
        assert verdict.get_attribute("data-status") == "unchecked"
        assert site.orders["valid"].order_number in facts_text(page)
    finally:
        context.close()


def test_english_one_hand_at_360_px_and_installable(site: Site, phone: Any) -> None:
    page = open_app(phone, site)
    assert page.locator("html").get_attribute("lang") == "es"
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    for name in ("Escanear con la cámara", "Usar una foto del papel"):
        box = page.get_by_text(name).bounding_box()
        assert box["height"] >= 48 and box["y"] + box["height"] <= PHONE["height"]  # within the thumb's reach
    assert page.locator("#verdict").get_attribute("aria-live") == "assertive"
    page.get_by_role("button", name="Switch to English").click()
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.locator("h1").inner_text() == "Verify a purchase order"
    verdict = paste(page, site.qr("valid"))
    assert page.locator("#verdict-title").inner_text() == "Valid signature: compare the facts with the paper"
    assert verdict.get_attribute("data-overall") == "ok"
    page.get_by_role("button", name="Cambiar a español").click()
    assert page.locator("#verdict-title").inner_text() == "Firma válida: compare los datos con el papel"
    for selector in ("#verdict-title", "#pack", "#scan", "label[for=photo]", "#facts .k", "#facts .v", "#checks li",
                     "#facts-intro", "#lang"):
        assert contrast(page, selector) >= 4.5, selector  # WCAG AA for text
    # installable: a manifest Chromium parses without errors, with its icons, and a service worker in control
    # (Page.getInstallabilityErrors only says "in-incognito" in a Playwright context)
    cdp = phone.new_cdp_session(page)
    manifest = cdp.send("Page.getAppManifest")
    assert manifest["errors"] == [], manifest["errors"]
    parsed = json.loads(manifest["data"])
    assert parsed["start_url"] == "/verificar" and parsed["display"] == "standalone" and parsed["lang"] == "es"
    for icon in parsed["icons"]:
        assert page.request.get(site.base_url + icon["src"]).ok, icon
    page.wait_for_function("navigator.serviceWorker.controller !== null", timeout=15_000)


def test_the_order_page_checks_the_qr_signature_as_a_fourth_check(site: Site, phone: Any) -> None:
    page = phone.new_page()
    good = site.qr("valid")
    page.goto(good)
    check = page.locator("#firma[data-state]:not([data-state='checking']):not([data-state='none'])")
    check.wait_for(timeout=15_000)
    assert check.get_attribute("data-state") == "signed", check.inner_text()
    assert "ok" in (check.get_attribute("class") or "")
    assert site.account.address.lower() in check.inner_text()
    assert page.locator("ul.checks > li").count() == 4
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]  # the address wraps
    check.scroll_into_view_if_needed()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "order-page-signed-qr.png"))
    if os.environ.get("PERU_COMPRAS_UPDATE_DOCS"):
        shutil.copyfile(ARTIFACTS / "order-page-signed-qr.png", DOCS / "order-page-signed-qr.png")
    facts = facts_of(site.orders["valid"])
    page.goto(tampered(good, {**facts, "items": 9}))
    page.reload()
    check.wait_for(timeout=15_000)
    assert check.get_attribute("data-state") == "unknown_signer"
    assert "bad" in (check.get_attribute("class") or "")
    plain = phone.new_page()
    loaded: list[str] = []
    plain.on("request", lambda request: loaded.append(request.url))
    plain.goto(site.base_url + site.orders["valid"].verify_path)  # a plain QR: nothing to show, nothing more loaded
    plain.wait_for_load_state("networkidle")
    assert plain.locator("#firma:visible").count() == 0
    ours = [url for url in loaded if "/verificar/" in url or "trust-pack" in url]
    assert ours == [site.base_url + "/verificar/check.js"]


def test_a_photo_of_the_paper_and_a_registrar_who_lost_the_role(site: Site, phone: Any,
                                                               tmp_path: Path) -> None:
    page = open_app(phone, site)
    photo = render_page(site.pdfs["valid"], tmp_path)  # the whole page at 150 dpi, as a photo of the paper
    page.locator("#verdict").evaluate("e => e.removeAttribute('data-overall')")
    page.set_input_files("#photo", str(photo))
    verdict = page.locator("#verdict[data-overall]")
    verdict.wait_for(timeout=30_000)
    assert verdict.get_attribute("data-overall") == "ok", verdict.inner_text()
    assert site.orders["valid"].order_number in facts_text(page)

    verdict = paste(page, site.qr("valid", key=bytes(site.former.key)))
    assert verdict.get_attribute("data-overall") == "bad"
    assert verdict.get_attribute("data-status") == "unknown_signer"
    assert page.locator("#verdict-title").inner_text() == "Firma de un registrador que perdió el permiso"
    body = page.locator("#verdict-body").inner_text()
    assert site.former.address.lower() in body and f"bloque {site.revoked_at}" in body


def test_the_routes_headers_and_trust_pack(site: Site) -> None:
    import httpx

    from peru_compras.trust import build_trust_pack

    with httpx.Client(base_url=site.base_url, timeout=10) as http:
        app = http.get("/verificar")
        assert app.status_code == 200 and app.headers["content-type"].startswith("text/html")
        csp = app.headers["content-security-policy"]
        assert "trusted-types verificar" in csp and "script-src 'self'" in csp and "'unsafe" not in csp
        assert app.headers["permissions-policy"].startswith("camera=(self)")
        assert app.headers["x-content-type-options"] == "nosniff"  # the page's own headers still come
        assert http.get("/verificar", headers={"If-None-Match": app.headers["etag"]}).status_code == 304
        worker = http.get("/verificar/sw.js")
        assert worker.headers["service-worker-allowed"] == "/verificar"
        assert "__VERSION__" not in worker.text and 'const VERSION = "' in worker.text
        assert http.get("/verificar/").status_code == 308
        for missing in ("/verificar/index.html", "/verificar/nope.js", "/verificar/../app.py",
                        "/verificar/vendor/jsqr/package.json"):
            assert http.get(missing).status_code == 404, missing
        assert "Apache License" in http.get("/verificar/vendor/jsqr/LICENSE").text
        assert "MIT License" in http.get("/verificar/vendor/noble-secp256k1/LICENSE").text

        first = http.get("/trust-pack.json")
        assert first.status_code == 200 and first.headers["access-control-allow-origin"] == "*"
        pack = first.json()
        expected = build_trust_pack(site.registry, hosts=[site.base_url.split("//")[1]], block=pack["block"])
        assert pack == expected
        assert site.base_url.split("//")[1] in pack["hosts"]
        assert "0x" + f"{site.orders['annulled'].token_id:064x}" in pack["annulled"]
        # answered from memory while the chain did not move (and at most once per PACK_INTERVAL otherwise)
        again = http.get("/trust-pack.json")
        assert again.headers["etag"] == first.headers["etag"]


#: a stand-in for the BarcodeDetector API (Debian's Chromium has none): it answers `text` once the camera's
#: video element shows frames, as a browser's own reader would
FAKE_DETECTOR = """
window.BarcodeDetector = class {
  static async getSupportedFormats() { return ["qr_code"]; }
  constructor(options) { this.formats = options.formats; }
  async detect(source) {
    window.__detectCalls = (window.__detectCalls || 0) + 1;
    return source.videoWidth > 0 && this.formats.includes("qr_code") ? [{ rawValue: %s, format: "qr_code" }] : [];
  }
};
"""


def test_without_the_vendor_folder_the_camera_still_reads_with_barcodedetector(site: Site, browser: Any) -> None:
    context = browser.new_context(viewport=PHONE, locale="es-PE", service_workers="block", permissions=["camera"])
    context.route("**/verificar/vendor/**", lambda route: route.fulfill(status=404, body="not found"))
    context.add_init_script(FAKE_DETECTOR % json.dumps(site.qr("valid")))
    try:
        page = open_app(context, site)
        assert page.locator("body").get_attribute("data-decoder") == "barcodedetector"
        notes = page.locator("#notes").inner_text()
        assert "lector de QR" not in notes  # the browser's own reader is enough for the camera
        assert "no tiene instalado el verificador de firmas" in notes  # but the signature cannot be checked
        page.get_by_role("button", name="Escanear con la cámara").click()
        verdict = page.locator("#verdict[data-overall]")
        verdict.wait_for(timeout=15_000)
        assert page.evaluate("window.__detectCalls") >= 1
        assert verdict.get_attribute("data-status") == "unchecked" and verdict.get_attribute("data-overall") == "warn"
        assert site.orders["valid"].order_number in facts_text(page)
    finally:
        context.close()


def test_the_products_signed_qr_is_the_one_the_browser_checks(site: Site, phone: Any) -> None:
    """What registration stamps (peru_compras.signed_qr, coincurve) is byte for byte what this file writes from
    the README (eth_account), both deterministic (RFC 6979), and the browser verifies it."""
    from peru_compras.signed_qr import QrSigner, qr_text

    order = site.orders["valid"]
    signer = QrSigner(bytes(site.account.key), site.chain_id, site.registry.address)
    text, warning = qr_text(site.base_url + order.verify_path, order, signer)
    assert warning is None
    assert text == site.qr("valid")
    page = open_app(phone, site)
    verdict = paste(page, text)
    assert verdict.get_attribute("data-overall") == "ok" and verdict.get_attribute("data-status") == "signed"


def test_text_supplier_other_currency_long_varints_and_a_non_ascii_order_number(site: Site, phone: Any) -> None:
    order = site.orders["valid"]
    url = f"{site.base_url}/o/{order.entity.key}/OC-%C3%91-7"  # quote("OC-Ñ-7")
    facts = {**facts_of(order), "orderKey": f"{order.entity.key}/OC-Ñ-7", "supplier": "MX-RFC:ABC010203AB1",
             "currency": "USD", "total": "123456.789", "items": 300}
    page = open_app(phone, site)
    verdict = paste(page, signed_text(url, facts, bytes(site.account.key), site.chain_id, site.registry.address))
    assert verdict.get_attribute("data-overall") == "ok", verdict.inner_text()
    shown = facts_text(page)
    for expected in ("OC-Ñ-7", "MX-RFC:ABC010203AB1", "USD 123,456.789", "300"):
        assert expected in shown, (expected, shown)
    # the same signature over the order key read another way (the number's letter decomposed) is a stranger's
    verdict = paste(page, signed_text(url, facts, bytes(site.account.key), site.chain_id, site.registry.address)
                    .replace("%C3%91", "N%CC%83"))
    assert verdict.get_attribute("data-status") == "unknown_signer"


def test_the_pack_is_built_rarely_and_a_dead_node_is_not_asked_on_every_request() -> None:
    import asyncio
    from types import SimpleNamespace

    from peru_compras.errors import NodeUnavailable
    from peru_compras.web import verifier

    now = [100.0]
    calls = {"sync": 0, "build": 0}
    state = {"block": 7, "down": False}

    async def sync(*, force: bool = False) -> int:
        calls["sync"] += 1
        if state["down"]:
            raise NodeUnavailable("node down")
        return state["block"]

    async def run(key: Any, work: Any) -> dict[str, Any]:
        calls["build"] += 1
        return {"format": "peru-compras-trust-pack/1", "block": key[1]}

    chain = SimpleNamespace(sync=sync, run=run, registry=None)
    page = SimpleNamespace(chain=chain, settings=SimpleNamespace(base_url="https://oc.example.pe"))
    packs = verifier.PackCache(page, clock=lambda: now[0])  # type: ignore[arg-type]

    def run_apart(cache: Any) -> Any:  # its own thread and loop: Playwright's sync API holds this thread's loop
        out: dict[str, Any] = {}

        def work() -> None:
            try:
                out["value"] = asyncio.run(cache.get())
            except Exception as exc:  # noqa: BLE001 — raised again below, in the test's thread
                out["error"] = exc

        thread = threading.Thread(target=work)
        thread.start()
        thread.join(timeout=10)
        if "error" in out:
            raise out["error"]
        return out["value"]

    get = lambda: run_apart(packs)  # noqa: E731

    first = get()
    assert json.loads(first.body)["block"] == 7 and calls == {"sync": 1, "build": 1}
    assert get() is first and calls["sync"] == 1  # within PACK_INTERVAL: from memory
    now[0] += verifier.PACK_INTERVAL
    assert get() is first and calls == {"sync": 2, "build": 1}  # the chain did not move: not rebuilt
    state["block"] = 9
    now[0] += verifier.PACK_INTERVAL
    assert json.loads(get().body)["block"] == 9 and calls["build"] == 2
    state["down"] = True
    now[0] += verifier.PACK_INTERVAL
    last = get()  # the node is down: the last pack (its block and time inside) is still served
    assert json.loads(last.body)["block"] == 9 and calls["sync"] == 4
    fresh = verifier.PackCache(page, clock=lambda: now[0])  # type: ignore[arg-type]
    with pytest.raises(NodeUnavailable):
        run_apart(fresh)
    with pytest.raises(NodeUnavailable):
        run_apart(fresh)
    assert calls["sync"] == 5  # not asked again within RETRY_AFTER
    now[0] += verifier.RETRY_AFTER
    with pytest.raises(NodeUnavailable):
        run_apart(fresh)
    assert calls["sync"] == 6
