"""The verification page: one order per URL (``/o/<entity>/<order number>``), readable without JavaScript.

Routes (the JSON ones are described at ``/openapi.json``):

- ``GET /o/{entity}/{order_number}``: the order's page (Spanish; ``?lang=en`` or Accept-Language for
  English; ``?doc=1`` runs the published-document check without JavaScript)
- ``GET /`` and ``GET /buscar``: search by entity and order number, by token id, by document hash
- ``GET /t/{token_id}``: redirect to the order's page
- ``GET /d/{hashlink}``: a PDF from the built-in document store
- ``GET /api/orders/{token_id}``, ``GET /api/orders/{token_id}/document``, ``GET /api/tokens/{token_id}``
  (the ERC-721 metadata ``tokenURI`` points to), ``GET /healthz``, ``GET /openapi.json``

Everything the chain holds is text from a registrar and may carry markup: templates autoescape every
value, JSON inside pages goes through ``|tojson``, links are only made from http(s) URLs, and a strict
Content-Security-Policy (scripts from this origin only, the one stylesheet by its hash, no third-party
resources, Trusted Types) backs that up. Pages are rendered once per order, language and status and then
served from memory (see :mod:`.chainview` for when the status is re-read).
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from eth_utils.crypto import keccak
from jinja2 import Environment, FunctionLoader, select_autoescape
from markupsafe import Markup, escape
from pydantic import BaseModel, ConfigDict
from starlette.applications import Starlette
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from ..chain.client import Registry
from ..chain.rpc import RpcError
from ..errors import ConfigurationError, NodeUnavailable, PeruComprasError, UnreadableRecord
from ..hashing import hashlink, parse_digest
from ..store import LocalStore
from . import i18n
from .chainview import LRU, ChainView, View
from .published import DocumentCheck, DocumentChecker

MAX_URL = 2048
MAX_BODY = 16 * 1024
PACKAGE = "peru_compras.web"


# --------------------------------------------------------------------------------------------------
# Assets


def _asset(name: str) -> bytes:
    return resources.files(PACKAGE).joinpath(name).read_bytes()


@dataclass(frozen=True, slots=True)
class Static:
    body: bytes
    gzipped: bytes
    media_type: str
    version: str


def _static_files() -> dict[str, Static]:
    types = {".js": "text/javascript; charset=utf-8", ".svg": "image/svg+xml", ".css": "text/css; charset=utf-8"}
    out = {}
    for name in ("app.js", "favicon.svg", "token.svg", "app.css"):
        body = _asset(f"static/{name}")
        out[name] = Static(body, gzip.compress(body, 9, mtime=0), types[name[name.rindex("."):]],
                           hashlib.sha256(body).hexdigest()[:10])
    return out


def _templates() -> Environment:
    def load(name: str) -> str:
        return _asset(f"templates/{name}").decode()

    env = Environment(loader=FunctionLoader(load), autoescape=select_autoescape(default=True,
                      default_for_string=True), trim_blocks=False, lstrip_blocks=False, auto_reload=False)
    return env


# --------------------------------------------------------------------------------------------------
# Security headers and request limits (plain ASGI: cheap on every request)


def content_security_policy(style_hash: str) -> str:
    return ("default-src 'none'; script-src 'self'; style-src 'sha256-" + style_hash + "'; img-src 'self' data:; "
            "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'; "
            "manifest-src 'self'; require-trusted-types-for 'script'; trusted-types 'none'")


class Guard:
    """Adds the security headers to every response and refuses oversized requests."""

    def __init__(self, app: Starlette, csp: str, fast: FastRoutes | None = None) -> None:
        self.app = app
        self.fast = fast
        self.common = [
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"no-referrer"),
            (b"x-frame-options", b"DENY"),
            (b"cross-origin-opener-policy", b"same-origin"),
            (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), payment=(), usb=()"),
        ]
        self.csp = (b"content-security-policy", csp.encode())

    @property
    def page(self) -> Page:
        page: Page = self.app.state.page
        return page

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"") > MAX_URL:
            await self._refuse(send, 414, b"URI too long")
            return
        for name, value in scope["headers"]:
            if name == b"content-length" and (not value.isdigit() or int(value) > MAX_BODY):
                await self._refuse(send, 413, b"request body too large")
                return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > MAX_BODY:
                raise StarletteHTTPException(413, "request body too large")
            return message

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {name for name, _ in headers}
                headers += [item for item in self.common if item[0] not in names]
                if b"content-security-policy" not in names:
                    headers.append(DOCUMENT_CSP_HEADER if _is_pdf(headers) else self.csp)
                if scope.get("scheme") == "https":
                    headers.append(HSTS)
                message = {**message, "headers": headers}
            await send(message)

        handler = self.fast(scope["path"]) if self.fast and scope["method"] in ("GET", "HEAD") else None
        if handler is not None:
            request = Request(scope, limited_receive)
            try:
                response = await handler(request)
            except Exception:  # noqa: BLE001 — the full app runs it again and answers the error its way
                response = None
            if response is not None:
                await response(scope, limited_receive, send_with_headers)
                return
        await self.app(scope, limited_receive, send_with_headers)

    async def _refuse(self, send: Send, status: int, text: bytes) -> None:
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                                (b"content-length", str(len(text)).encode()), *self.common, self.csp]})
        await send({"type": "http.response.body", "body": text})


Handler = Callable[[Request], Awaitable[Response]]
#: the hottest routes, dispatched without the router: path -> handler (or None: let the app route it)
FastRoutes = Callable[[str], Handler | None]


def _is_pdf(headers: list[tuple[bytes, bytes]]) -> bool:
    return (b"content-type", b"application/pdf") in headers


#: every PDF the page sends: no scripts, no plugins, no requests, a unique origin (with `attachment`)
DOCUMENT_CSP = "sandbox; default-src 'none'; frame-ancestors 'none'"
DOCUMENT_CSP_HEADER = (b"content-security-policy", DOCUMENT_CSP.encode())
#: sent on answers that came over HTTPS (directly, or from a trusted proxy's X-Forwarded-Proto)
HSTS = (b"strict-transport-security", b"max-age=31536000")


# --------------------------------------------------------------------------------------------------
# Settings and helpers


@dataclass
class PageSettings:
    """What the page needs besides the registry.

    `explorer` is a block-explorer URL template with ``{kind}`` (``tx``, ``address`` or ``block``) and
    ``{id}``, e.g. ``https://explorer.example/{kind}/{id}``; None (the default) shows no explorer links.
    """

    base_url: str
    store: LocalStore | None = None
    explorer: str | None = None
    sync_interval: float = 1.0
    allow_private_fetch: bool = False
    checker: DocumentChecker | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.base_url = self.base_url.rstrip("/")
        if self.explorer is not None and not (_is_web_url(self.explorer) and "{id}" in self.explorer):
            raise ConfigurationError(f"block explorer template {self.explorer!r} is not an http(s) URL with {{id}}",
                                     hint="e.g. https://explorer.example/{kind}/{id}")


def _is_web_url(url: str) -> bool:
    """Only http(s) URLs become links (a registrar's text could say ``javascript:…``)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.netloc) and url.isprintable() and " " not in url


def parse_token(text: str) -> int | None:
    """A token id from decimal digits or 0x-prefixed hex; None when it is neither or out of range."""
    value = text.strip()
    try:
        if value.lower().startswith("0x") and 2 < len(value) <= 66:
            number = int(value[2:], 16)
        elif value.isdigit() and value.isascii() and len(value) <= 78:
            number = int(value)
        else:
            return None
    except ValueError:
        return None
    return number if number < 2**256 else None


@lru_cache(maxsize=65_536)
def token_of(entity: str, order_number: str) -> int:
    """``uint256(keccak256("<entity>/<order number>"))``, remembered (keccak is a third of a page view)."""
    return int.from_bytes(keccak(f"{entity}/{order_number}".encode()), "big")


def _hex(token_id: int) -> str:
    return f"0x{token_id:064x}"


def isolated(text: str) -> Markup:
    """Outside text inside a sentence of ours: escaped, its invisible and bidi characters shown as escapes
    (``\u202e``), and in a ``<bdi dir="auto">`` so that right-to-left text cannot reorder our words."""
    from ..terminal import safe

    return Markup('<bdi dir="auto">{}</bdi>').format(safe(text))


def marked(text: str) -> Markup:
    """An identifier (order number, entity or supplier id) with every non-ASCII character highlighted with
    its code point: a look-alike (Cyrillic "О", U+2011 hyphen, a filler) cannot pass for the genuine one."""
    from ..terminal import hidden

    if text.isascii():
        return Markup("{}").format(text)
    parts = [Markup("{}").format(char) if char.isascii() else
             Markup('<mark class="nonascii" title="U+{0:04X}">{1}<sup>U+{0:04X}</sup></mark>').format(
                 ord(char), "" if hidden(char) else char)
             for char in text]
    return Markup('<bdi dir="ltr">{}</bdi>').format(Markup("").join(parts))


class Unavailable(Exception):
    """The chain could not be read."""


# --------------------------------------------------------------------------------------------------
# API models (for the OpenAPI document only: handlers return ready-made JSON)


class Party(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: str


class OrderRecord(BaseModel):
    """The on-chain record of one order plus its status and registration facts."""

    model_config = ConfigDict(extra="allow")
    token_id: str
    order_number: str
    issued_on: str
    entity: Party
    buyer: Party
    supplier: Party
    items: list[dict[str, str]]
    total: dict[str, str]
    delivery: dict[str, Any]
    status: str
    status_changed_at: int | None
    annul_reason: str | None = None
    replaced_by: str | None = None
    supersedes: str | None = None
    sha256: str
    hashlink: str
    document_url: str
    verify_url: str
    tx_hash: str
    block_number: int
    registered_at: int | None
    registrar: str
    contract: str
    chain_id: int | None


class Attribute(BaseModel):
    trait_type: str
    value: str | int


class TokenMetadata(BaseModel):
    """ERC-721 metadata JSON (what ``tokenURI`` points to when the registry's token base URI is set)."""

    name: str
    description: str
    external_url: str
    image: str
    attributes: list[Attribute]


class PublishedCheck(BaseModel):
    """Whether the PDF at ``document_url`` is still the registered original."""

    outcome: str
    url: str
    checked_at: int
    sha256: str | None
    size: int | None
    detail: str | None
    source: str


class Health(BaseModel):
    status: str
    block: int | None = None
    chain_id: int | None = None
    registry: str | None = None
    detail: str | None = None


class Problem(BaseModel):
    error: str
    detail: str


# --------------------------------------------------------------------------------------------------
# The page


@dataclass(frozen=True, slots=True)
class Cached:
    body: bytes
    gzipped: bytes
    etag: str


class Page:
    """Rendering and caching for one registry."""

    def __init__(self, chain: ChainView, settings: PageSettings) -> None:
        self.chain = chain
        self.settings = settings
        self.env = _templates()
        self.static = _static_files()
        css = self.static["app.css"].body.decode().strip()
        self.css = Markup(css)
        self.style_hash = base64.b64encode(hashlib.sha256(css.encode()).digest()).decode()
        self.env.globals["css"] = self.css
        self.env.globals["static"] = lambda name: f"/static/{name}?v={self.static[name].version}"
        self.checker = settings.checker or DocumentChecker(settings.store, settings.base_url,
                                                          allow_private=settings.allow_private_fetch)
        self._html: LRU[tuple[Any, ...], Cached] = LRU(4096)
        self._json: LRU[tuple[Any, ...], bytes] = LRU(4096)

    # -- small helpers --------------------------------------------------------------------------------

    def explorer(self, kind: str, ident: str) -> str | None:
        template = self.settings.explorer
        if not template:
            return None
        return template.replace("{kind}", kind).replace("{id}", quote(ident, safe=""))

    @staticmethod
    def with_lang(path: str, lang: str, explicit: bool, **params: str) -> str:
        query = dict(params)
        if explicit:
            query["lang"] = lang
        return path + ("?" + urlencode(query) if query else "")

    def context(self, lang: str, explicit: bool, path: str) -> dict[str, Any]:
        other = i18n.MESSAGES[lang]["switch_lang_code"]
        return {
            "t": i18n.WORDS[lang],
            "lang": lang,
            "lang_param": lang if explicit else "",
            "home_url": self.with_lang("/", lang, explicit),
            "search_url": self.with_lang("/buscar", lang, explicit),
            "switch_url": path + "?" + urlencode({"lang": other}),
        }

    def respond_html(self, cached: Cached, request: Request, lang: str, status: int = 200) -> Response:
        compressed = "gzip" in request.headers.get("accept-encoding", "")
        etag = cached.etag[:-1] + '-gz"' if compressed else cached.etag  # one tag per representation
        headers = {"Content-Language": i18n.MESSAGES[lang]["html_lang"], "Vary": "Accept-Language, Accept-Encoding",
                   "Cache-Control": "no-cache", "ETag": etag}
        if status == 200 and request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers=headers)
        if compressed:
            headers["Content-Encoding"] = "gzip"
        return Response(cached.gzipped if compressed else cached.body, status_code=status,
                        media_type="text/html; charset=utf-8", headers=headers)

    def render(self, template: str, **values: Any) -> Cached:
        body = self.env.get_template(template).render(**values).encode()
        return Cached(body, gzip.compress(body, 6, mtime=0), '"' + hashlib.sha256(body).hexdigest()[:20] + '"')

    def error_page(self, request: Request, status: int, message_key: str) -> Response:
        lang, explicit = i18n.pick_language(request.query_params.get("lang"), request.headers.get("accept-language"))
        cached = self.render("error.html", **self.context(lang, explicit, quote(request.url.path, safe="/:")),
                             message=i18n.MESSAGES[lang][message_key])
        response = self.respond_html(cached, request, lang, status)
        response.headers["Cache-Control"] = "no-store"
        return response

    async def view(self, token_id: int) -> View | None:
        try:
            return await self.chain.order(token_id)
        except (NodeUnavailable, RpcError, ConfigurationError) as exc:
            raise Unavailable(str(exc)) from exc

    # -- the order page -------------------------------------------------------------------------------

    async def order_page(self, request: Request, entity: str, order_number: str) -> Response:
        lang, explicit = i18n.pick_language(request.query_params.get("lang"), request.headers.get("accept-language"))
        token_id = token_of(entity, order_number)
        view = await self.view(token_id)
        path = "/o/" + quote(entity, safe=":") + "/" + quote(order_number, safe="") if view is None else ""
        if view is None:
            t = i18n.MESSAGES[lang]
            key: tuple[Any, ...] = ("missing", token_id, lang, explicit)
            cached = self._html.get(key)
            if cached is None:
                cached = self.render(
                    "missing.html", **self.context(lang, explicit, path),
                    body=i18n.fill(t["verdict_missing_body"], number=order_number, entity=entity),
                    form={"entidad": entity, "numero": order_number, "q": ""})
                self._html.put(key, cached)
            response = self.respond_html(cached, request, lang, 404)
            response.headers["Cache-Control"] = "no-store"
            return response
        facts, status = view.facts, view.status
        check: DocumentCheck | None
        if request.query_params.get("doc") == "1" and _is_web_url(facts.document_url):
            check = await self.checker.check(token_id, facts.document_url, facts.document_hash, _client(request))
        else:
            check = self.checker.cached(token_id, facts.document_url)
        linked = {}
        for other in (status.replaced_by, status.replaces):
            if other:
                found = await self.view(other)
                linked[other] = (found.facts.order.order_number, found.facts.order.verify_path) if found else None
        key = (token_id, lang, explicit, status.key, self.chain.epoch,
               (check.outcome, int(check.checked_at)) if check else None)
        cached = self._html.get(key)
        if cached is None:
            cached = self.render("order.html", **self.context(lang, explicit, facts.order.verify_path),
                                 p=self.order_values(view, lang, explicit, check, linked))
            self._html.put(key, cached)
        return self.respond_html(cached, request, lang)

    def order_values(self, view: View, lang: str, explicit: bool, check: DocumentCheck | None,
                     linked: dict[int, tuple[str, str] | None]) -> dict[str, Any]:
        t = i18n.MESSAGES[lang]
        facts, status = view.facts, view.status
        order = facts.order
        registry = self.chain.registry

        def party_id(party: Any) -> str:
            if party.id is None:
                return ""
            return f"RUC {party.id}" if party.scheme == "PE-RUC" else f"{party.scheme} {party.id}"

        def other_order(token: int) -> tuple[str, str | None]:
            found = linked.get(token)
            if found is None:
                return _hex(token), self.with_lang(f"/t/{_hex(token)}", lang, explicit)
            return i18n.fill(t["order_token"], number=found[0]), self.with_lang(found[1], lang, explicit)

        changed = i18n.format_timestamp(status.changed_at, lang) if status.changed_at else ""
        link = None
        rows: list[dict[str, str | None]] = []
        if status.status == "annulled":
            reason = isolated(status.annul_reason or "—")  # an annuller's bytes: may hold U+202E
            verdict = {"kind": "bad", "mark": "✗", "title": t["verdict_annulled"],
                       "body": Markup(escape(t["verdict_annulled_body"])).format(date=changed, reason=reason)}
            status_block = {"kind": "bad", "mark": "✗", "title": t["check_status_annulled"], "body": ""}
            rows += [{"label": t["annul_reason"], "value": reason, "url": None},
                     {"label": t["annul_date"], "value": changed, "url": None}]
        elif status.status == "superseded" and status.replaced_by:
            text, url = other_order(status.replaced_by)
            verdict = {"kind": "warn", "mark": "!", "title": t["verdict_superseded"],
                       "body": i18n.fill(t["verdict_superseded_body"], date=changed)}
            link = {"url": url, "text": t["see_replacement"]}
            status_block = {"kind": "warn", "mark": "!", "title": t["check_status_superseded"], "body": ""}
            rows += [{"label": t["replaced_by"], "value": text, "url": url},
                     {"label": t["replaced_on"], "value": changed, "url": None}]
        else:
            verdict = {"kind": "ok", "mark": "✓", "title": t["verdict_valid"], "body": t["verdict_valid_body"]}
            status_block = {"kind": "ok", "mark": "✓", "title": t["check_status_valid"],
                            "body": t["status_valid_body"]}
        if status.replaces:
            text, url = other_order(status.replaces)
            rows.append({"label": t["replaces"], "value": text, "url": url})
        status_values: dict[str, Any] = {**status_block, "rows": rows}
        verdict_values: dict[str, Any] = {**verdict, "link": link}

        delivery = order.delivery
        if delivery.term_days is not None:
            term = t["term_day"] if delivery.term_days == 1 else i18n.fill(t["term_days"], days=delivery.term_days)
        else:
            term = i18n.fill(t["deadline"], date=i18n.format_date(delivery.deadline or "", lang))
        token_hex = _hex(facts.token_id)
        check_url = f"/api/orders/{token_hex}/document"
        doc = self.document_values(check, facts.document_url, lang, explicit, order.verify_path)
        messages = {key: t[key] for key in t if key.startswith(("file_", "hash_", "doc_")) or key == "no_subtle"}
        return {
            "title": i18n.fill(t["title_order"], number=order.order_number, entity=order.entity.name),
            "verdict": verdict_values,
            "number": marked(order.order_number),
            "lookalike": not (order.order_number.isascii() and order.entity.key.isascii()
                              and (order.supplier.id or "").isascii()),
            "issued_on": i18n.format_date(order.issued_on, lang),
            "entity_name": order.entity.name,
            "entity_id": marked(party_id(order.entity)),
            "buyer_name": order.buyer.name,
            "buyer_id": party_id(order.buyer),
            "supplier_name": order.supplier.name,
            "supplier_id": marked(party_id(order.supplier)),
            "total": i18n.format_amount(order.total_amount, order.currency),
            "term": term,
            "place": delivery.place,
            "lines": [{"description": item.description, "quantity": i18n.format_quantity(item.quantity),
                       "unit": item.unit, "cubso": item.cubso,
                       "price": i18n.format_amount(item.unit_price, order.currency) if item.unit_price else "—"}
                      for item in order.items],
            "document_url": facts.document_url,
            "document_link": _is_web_url(facts.document_url),
            "hashlink": hashlink(facts.document_hash),
            "sha256": facts.document_hash.hex(),
            "block": f"{facts.block_number:,}".replace(",", "\u202f") if lang == "es" else f"{facts.block_number:,}",
            "block_link": self.explorer("block", str(facts.block_number)),
            "registered_at": i18n.format_timestamp(facts.registered_at, lang) if facts.registered_at else "",
            "tx": facts.tx_hash,
            "tx_link": self.explorer("tx", facts.tx_hash),
            "registrar": facts.registrar,
            "registrar_link": self.explorer("address", facts.registrar) if facts.registrar.startswith("0x") else None,
            "contract": registry.address,
            "contract_link": self.explorer("address", registry.address),
            "chain_id": self.chain.chain_id,
            "token_hex": token_hex,
            "status": status_values,
            "doc": doc,
            "api_url": f"/api/orders/{token_hex}",
            "data": {"sha256": facts.document_hash.hex(), "status": status.status, "check_url": check_url,
                     "messages": messages},
        }

    def document_values(self, check: DocumentCheck | None, url: str, lang: str, explicit: bool,
                        verify_path: str) -> dict[str, str]:
        t = i18n.MESSAGES[lang]
        if not _is_web_url(url):
            return {"state": "refused", "kind": "warn", "mark": "!", "text": t["doc_refused"], "detail": "",
                    "check_url": ""}
        if check is None:
            return {"state": "pending", "kind": "info", "mark": "?", "text": t["doc_pending"], "detail": "",
                    "check_url": self.with_lang(verify_path, lang, explicit, doc="1") + "#documento"}
        kind = {"original": "ok", "altered": "bad", "missing": "bad"}.get(check.outcome, "warn")
        mark = {"ok": "✓", "bad": "✗"}.get(kind, "!")
        detail = i18n.fill(t["doc_checked_at"], date=i18n.format_timestamp(int(check.checked_at), lang))
        if check.outcome == "altered" and check.sha256:
            detail += f" SHA-256: {check.sha256}"
        return {"state": check.outcome, "kind": kind, "mark": mark, "text": t[f"doc_{check.outcome}"],
                "detail": detail, "check_url": ""}

    # -- JSON ------------------------------------------------------------------------------------------

    def record_json(self, view: View) -> bytes:
        key = (view.token_id, view.status.key, self.chain.epoch)
        cached = self._json.get(key)
        if cached is not None:
            return cached
        facts, status = view.facts, view.status
        out: dict[str, Any] = {"token_id": _hex(facts.token_id)}
        out.update(facts.order.to_json())
        out.update(
            status=status.status,
            status_changed_at=status.changed_at or None,
            annul_reason=status.annul_reason,
            replaced_by=_hex(status.replaced_by) if status.replaced_by else None,
            supersedes=_hex(status.replaces) if status.replaces else None,
            sha256=facts.document_hash.hex(),
            hashlink=hashlink(facts.document_hash),
            document_url=facts.document_url,
            verify_url=self.settings.base_url + facts.order.verify_path,
            tx_hash=facts.tx_hash,
            block_number=facts.block_number,
            registered_at=facts.registered_at,
            registrar=facts.registrar,
            contract=self.chain.registry.address,
            chain_id=self.chain.chain_id,
        )
        body = json.dumps(out, ensure_ascii=False, separators=(",", ":")).encode()
        self._json.put(key, body)
        return body

    def metadata_json(self, view: View) -> bytes:
        key = ("meta", view.token_id, view.status.key, self.chain.epoch)
        cached = self._json.get(key)
        if cached is not None:
            return cached
        facts, order = view.facts, view.facts.order
        status_es = {"valid": "vigente", "annulled": "anulada", "superseded": "reemplazada"}[view.status.status]
        total = i18n.format_amount(order.total_amount, order.currency)
        out = {
            "name": f"Orden de compra {order.order_number}",
            "description": f"Orden de compra {order.order_number} de {order.entity.name} a {order.supplier.name} "
                           f"por {total}; estado: {status_es}.",
            "external_url": self.settings.base_url + order.verify_path,
            "image": self.settings.base_url + "/static/token.svg",
            "attributes": [
                {"trait_type": "entity", "value": order.entity.name},
                {"trait_type": "entity_id", "value": order.entity.key},
                {"trait_type": "order_number", "value": order.order_number},
                {"trait_type": "supplier", "value": order.supplier.name},
                {"trait_type": "issued_on", "value": order.issued_on},
                {"trait_type": "total", "value": order.total_amount},
                {"trait_type": "currency", "value": order.currency},
                {"trait_type": "status", "value": view.status.status},
                {"trait_type": "sha256", "value": facts.document_hash.hex()},
                {"trait_type": "document_url", "value": facts.document_url},
            ],
        }
        body = json.dumps(out, ensure_ascii=False, separators=(",", ":")).encode()
        self._json.put(key, body)
        return body


def _client(request: Request) -> str:
    return request.client.host if request.client else "-"


def _json(body: bytes | dict[str, Any], status: int = 200, **headers: str) -> Response:
    if isinstance(body, dict):
        body = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    base = {"Access-Control-Allow-Origin": "*", "Cache-Control": "no-cache"}
    base.update({key.replace("_", "-"): value for key, value in headers.items()})
    return Response(body, status_code=status, media_type="application/json", headers=base)


def _problem(status: int, error: str, detail: str) -> Response:
    response = _json({"error": error, "detail": detail}, status)
    response.headers["Cache-Control"] = "no-store"
    return response


# --------------------------------------------------------------------------------------------------
# The JSON API's description


def openapi_schema() -> dict[str, Any]:
    """The OpenAPI document of the JSON API, generated by FastAPI from the typed models above.

    FastAPI is used for this only: requests are routed by Starlette, whose per-request cost measured here
    is about a quarter of FastAPI's (about 30 µs against 130 µs for a trivial route) — the page's
    throughput goal depends on it. test_web.py checks the two agree on the routes.
    """
    from fastapi import FastAPI

    api = FastAPI(title="peru-compras", version="1", openapi_url=None, docs_url=None, redoc_url=None,
                  summary="Verify public purchase orders registered on an EVM chain.",
                  description="Read-only JSON API of the verification page. Token ids are accepted in decimal or "
                              "as 0x-prefixed hex; every record is read from the chain (and cached until its "
                              "status changes).")
    problems: dict[int | str, dict[str, Any]] = {400: {"model": Problem}, 404: {"model": Problem},
                                                 503: {"model": Problem}}

    async def order(token_id: str) -> None:
        """The on-chain record of an order, its status and the facts of its registration."""

    async def document(token_id: str) -> None:
        """Whether the PDF published at the order's `document_url` is still the registered original.

        The server fetches it (http(s), public hosts only, size and time limits) or, for its own document
        store, reads it directly. Answers are cached for a while; fetches are rate-limited (429)."""

    async def token(token_id: str) -> None:
        """ERC-721 metadata JSON: set the registry's token base URI to `<page>/api/tokens/` and
        `tokenURI(id)` points here."""

    async def health() -> None:
        """200 when the node answers (and the registry is known), 503 otherwise."""

    api.get("/api/orders/{token_id}", tags=["orders"], response_model=None,
            responses={200: {"model": OrderRecord}, **problems})(order)
    api.get("/api/orders/{token_id}/document", tags=["orders"], response_model=None,
            responses={200: {"model": PublishedCheck}, 429: {"model": PublishedCheck}, **problems})(document)
    api.get("/api/tokens/{token_id}", tags=["tokens"], response_model=None,
            responses={200: {"model": TokenMetadata}, **problems})(token)
    api.get("/healthz", tags=["service"], response_model=None,
            responses={200: {"model": Health}, 503: {"model": Health}})(health)
    schema: dict[str, Any] = api.openapi()
    return schema


# --------------------------------------------------------------------------------------------------
# The application


def create_app(registry: Callable[[], Registry], settings: PageSettings) -> Guard:
    """The page for the registry `registry()` returns (called once, when first needed): a Starlette app
    inside :class:`Guard`, which adds the security headers and size limits."""
    chain = ChainView(registry, sync_interval=settings.sync_interval)
    page = Page(chain, settings)
    openapi = json.dumps(openapi_schema(), ensure_ascii=False).encode()

    async def unavailable(request: Request, exc: Exception) -> Response:
        if request.url.path.startswith("/api/"):
            return _problem(503, "unavailable", "the chain cannot be read right now")
        return page.error_page(request, 503, "error_unavailable")

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if request.url.path.startswith("/api/") or exc.status_code in (405, 413):
            return _problem(exc.status_code, "http", str(exc.detail))
        return page.error_page(request, exc.status_code, "error_not_found" if exc.status_code == 404
                               else "error_generic")

    async def unreadable(request: Request, exc: Exception) -> Response:
        if request.url.path.startswith("/api/"):
            return _problem(502, "unreadable", "the on-chain record could not be read")
        return page.error_page(request, 502, "error_unreadable" if isinstance(exc, UnreadableRecord)
                               else "error_generic")

    async def internal(request: Request, exc: Exception) -> Response:
        # Nothing from outside should get here; if it does, the answer is still one line of JSON (or the
        # error page), never a traceback or an object's repr.
        if request.url.path.startswith("/api/"):
            return _problem(500, "internal", "the request could not be served")
        return page.error_page(request, 500, "error_generic")

    async def view_or_problem(token: str) -> View | Response:
        token_id = parse_token(token)
        if token_id is None:
            return _problem(400, "invalid", "a token id is decimal digits or 0x followed by hex digits")
        view = await page.view(token_id)
        if view is None:
            return _problem(404, "not_registered", f"no order is registered as token {_hex(token_id)}")
        return view

    # -- pages ----------------------------------------------------------------------------------------

    async def order_page(request: Request) -> Response:
        return await page.order_page(request, request.path_params["entity"], request.path_params["order_number"])

    async def search(request: Request) -> Response:
        return await search_page(page, request)

    async def token_page(request: Request) -> Response:
        found = await view_or_problem(request.path_params["token_id"])
        if isinstance(found, Response):
            return page.error_page(request, found.status_code, "error_not_found")
        lang, explicit = i18n.pick_language(request.query_params.get("lang"), request.headers.get("accept-language"))
        return RedirectResponse(page.with_lang(found.facts.order.verify_path, lang, explicit), status_code=303)

    async def static(request: Request) -> Response:
        item = page.static.get(request.path_params["name"])
        if item is None:
            raise StarletteHTTPException(404)
        headers = {"Cache-Control": "public, max-age=31536000, immutable", "Vary": "Accept-Encoding"}
        if "gzip" in request.headers.get("accept-encoding", ""):
            headers["Content-Encoding"] = "gzip"
            return Response(item.gzipped, media_type=item.media_type, headers=headers)
        return Response(item.body, media_type=item.media_type, headers=headers)

    async def favicon(request: Request) -> Response:
        item = page.static["favicon.svg"]
        return Response(item.body, media_type=item.media_type, headers={"Cache-Control": "public, max-age=86400"})

    async def document(request: Request) -> Response:
        store = settings.store
        try:
            digest = parse_digest(request.path_params["name"].removesuffix(".pdf"))
        except ValueError:
            raise StarletteHTTPException(404) from None
        etag = f'"{digest.hex()}"'
        # A stored PDF is a registrar's (or a supplier's) file: it is downloaded, never shown inside the
        # page's origin, and were a browser to render it anyway, the sandbox CSP leaves its scripts no
        # origin, no network and no plugin (Chromium's viewer would run a PDF's JavaScript).
        headers = {"Cache-Control": "public, max-age=31536000, immutable", "ETag": etag,
                   "Access-Control-Allow-Origin": "*", "Cross-Origin-Resource-Policy": "cross-origin",
                   "Content-Disposition": f'attachment; filename="{digest.hex()[:16]}.pdf"',
                   "Content-Security-Policy": DOCUMENT_CSP}
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers=headers)
        data = None
        if store is not None:
            data = await chain.run(("doc", digest), lambda: store.get(digest))
        if data is None:
            raise StarletteHTTPException(404)
        if hashlib.sha256(data).digest() != digest:
            return page.error_page(request, 500, "error_generic")
        return Response(data, media_type="application/pdf", headers=headers)

    # -- JSON API (described by openapi_schema) -------------------------------------------------------

    async def api_read(token: str, render: Callable[[View], bytes]) -> Response:
        """An order as JSON (`render`: its record, or its ERC-721 metadata), or the problem why not."""
        found = await view_or_problem(token)
        if isinstance(found, Response):
            return found
        return _json(render(found))

    async def api_order(request: Request) -> Response:
        return await api_read(request.path_params["token_id"], page.record_json)

    async def api_document(request: Request) -> Response:
        found = await view_or_problem(request.path_params["token_id"])
        if isinstance(found, Response):
            return found
        url = found.facts.document_url
        if not _is_web_url(url):
            result = DocumentCheck("refused", url, 0.0, detail="not an http(s) URL")
        else:
            result = await page.checker.check(found.token_id, url, found.facts.document_hash, _client(request))
        body = result.to_json()
        if result.outcome == "rate_limited":
            return _json(body, 429, Retry_After="60")
        return _json(body)

    async def api_token(request: Request) -> Response:
        return await api_read(request.path_params["token_id"], page.metadata_json)

    async def healthz(request: Request) -> Response:
        try:
            block = await chain.sync()
            return _json({"status": "ok", "block": block, "chain_id": chain.chain_id,
                          "registry": chain.registry.address}, Cache_Control="no-store")
        except (NodeUnavailable, RpcError, PeruComprasError, OSError) as exc:
            detail = exc.message if isinstance(exc, PeruComprasError) else type(exc).__name__
            return _json({"status": "unavailable", "detail": detail}, 503, Cache_Control="no-store")

    async def openapi_json(request: Request) -> Response:
        return _json(openapi)

    def fast(path: str) -> Handler | None:
        """The order page and the two JSON reads, routed by prefix (Starlette's router and middleware cost
        about as much as the handler itself); anything else, and every error, goes through the app."""
        if path.startswith("/o/"):
            entity, _, number = path[3:].partition("/")
            if entity and number:
                return lambda request: page.order_page(request, entity, number)
        elif path.startswith("/api/orders/"):
            token = path[12:]
            if token and "/" not in token:
                return lambda request: api_read(token, page.record_json)
        elif path.startswith("/api/tokens/"):
            token = path[12:]
            if token and "/" not in token:
                return lambda request: api_read(token, page.metadata_json)
        return None

    get = ["GET"]
    routes = [  # the hot ones first: Starlette tries them in order
        Route("/o/{entity}/{order_number:path}", order_page, methods=get),
        Route("/api/orders/{token_id}", api_order, methods=get),
        Route("/api/tokens/{token_id}", api_token, methods=get),
        Route("/static/{name}", static, methods=get),
        Route("/api/orders/{token_id}/document", api_document, methods=get),
        Route("/healthz", healthz, methods=get),
        Route("/d/{name}", document, methods=get),
        Route("/", search, methods=get),
        Route("/buscar", search, methods=get),
        Route("/search", search, methods=get),
        Route("/t/{token_id}", token_page, methods=get),
        Route("/favicon.ico", favicon, methods=get),
        Route("/openapi.json", openapi_json, methods=get),
    ]
    app = Starlette(routes=routes, exception_handlers={StarletteHTTPException: http_error,
                                                      Unavailable: unavailable, PeruComprasError: unreadable,
                                                      Exception: internal})
    app.state.page = page
    return Guard(app, content_security_policy(page.style_hash), fast)


# --------------------------------------------------------------------------------------------------
# Search


async def search_page(page: Page, request: Request) -> Response:
    params = request.query_params
    lang, explicit = i18n.pick_language(params.get("lang"), request.headers.get("accept-language"))
    t = i18n.MESSAGES[lang]
    entity = " ".join(params.get("entidad", "").split())[:60]
    if entity.replace(" ", "").isdigit():
        entity = entity.replace(" ", "")
    number = params.get("numero", "").strip()[:40]
    query = params.get("q", "").strip()[:100]
    message, status = "", 200
    form = {"entidad": entity, "numero": number, "q": query}
    if entity or number:
        if not (entity and number):
            message, status = t["search_bad_entity"], 400
        else:
            view = await page.view(token_of(entity, number))
            if view is not None:
                return RedirectResponse(page.with_lang(view.facts.order.verify_path, lang, explicit), status_code=303)
            message, status = i18n.fill(t["search_not_found"], query=f"{entity}/{number}"), 404
    elif query:
        found = await _lookup(page, query)
        if isinstance(found, View):
            return RedirectResponse(page.with_lang(found.facts.order.verify_path, lang, explicit), status_code=303)
        message, status = i18n.fill(t[found], query=query), (400 if found == "search_bad" else 404)
    cached = page.render("search.html", **page.context(lang, explicit, "/buscar"), form=form, message=message,
                         message_kind="bad" if status >= 400 else "info")
    response = page.respond_html(cached, request, lang, status)
    if params:
        response.headers["Cache-Control"] = "no-store"
    return response


async def _lookup(page: Page, query: str) -> View | str:
    """The order a token id, document hash or ENTITY/NUMBER names, or the message key saying why not."""
    text = query.strip()
    candidates: list[Callable[[], Awaitable[View | None]]] = []
    if "/" in text and not text.startswith("hl:"):
        entity, _, number = text.partition("/")
        candidates.append(lambda: page.view(token_of(entity.strip(), number.strip())))
    else:
        token_id = parse_token(text)
        if token_id is not None:
            candidates.append(lambda: page.view(token_id))
        try:
            digest = parse_digest(text)
        except ValueError:
            digest = None
        if digest is not None:
            async def by_hash() -> View | None:
                assert digest is not None
                try:
                    ids = await page.chain.find_by_hash(digest)
                except (NodeUnavailable, RpcError) as exc:
                    raise Unavailable(str(exc)) from exc
                return await page.view(ids[0]) if ids else None
            candidates.append(by_hash)
    if not candidates:
        return "search_bad"
    for candidate in candidates:
        found = await candidate()
        if found is not None:
            return found
    return "search_not_found"


# --------------------------------------------------------------------------------------------------
# From a workspace


def app_from_workspace(ws: Any, *, explorer: str | None = None) -> Guard:
    """The page for a :class:`~peru_compras.config.Workspace`: its registry, its document store, its base URL.

    The block-explorer template comes from `explorer` or ``PERU_COMPRAS_EXPLORER_URL``.
    """
    from ..chain.rpc import Rpc

    settings = ws.settings

    def registry() -> Registry:
        found: Registry = ws.registry()
        headers = {"Authorization": f"Bearer {settings.rpc_token}"} if settings.rpc_token else None
        rpc = Rpc(found.rpc.url, timeout=5.0, attempts=1, headers=headers)
        return Registry(rpc, found.address, from_block=found.from_block)

    page_settings = PageSettings(base_url=settings.base_url, store=ws.store,
                                 explorer=explorer or os.environ.get("PERU_COMPRAS_EXPLORER_URL") or None)
    return create_app(registry, page_settings)
