"""The page's core for one registry: its settings, the chain view, the templates, and the caches of rendered
pages and JSON bodies. Pages are rendered once per order, language and status and then served from memory
(see :mod:`.chainview` for when the status is re-read)."""

from __future__ import annotations

import base64
import gzip
import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ..errors import ConfigurationError, NodeUnavailable, RpcError, Unavailable
from ..store import LocalStore
from ..urls import token_id_of_key
from . import i18n, presenters
from .assets import static_files, templates
from .chainview import LRU, ChainView, View
from .published import DocumentCheck, DocumentChecker


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
    #: a file ``peru-compras mirror`` built: the list pages (:mod:`.lists`); None: no lists (404)
    mirror: Path | None = None
    mirror_page_size: int = 50

    def __post_init__(self) -> None:
        self.base_url = self.base_url.rstrip("/")
        if self.explorer is not None and not (presenters.is_web_url(self.explorer) and "{id}" in self.explorer):
            raise ConfigurationError(f"block explorer template {self.explorer!r} is not an http(s) URL with {{id}}",
                                     hint="e.g. https://explorer.example/{kind}/{id}")


@lru_cache(maxsize=65_536)
def token_of(entity: str, order_number: str) -> int:
    """The token id of ``<entity>/<order number>``, remembered (keccak is a third of a page view)."""
    return token_id_of_key(f"{entity}/{order_number}")


def get_routes(handlers: dict[str, Callable[[Request], Awaitable[Response]]]) -> list[BaseRoute]:
    """GET routes (Starlette answers HEAD with them too), path -> handler, in the order they are tried."""
    return [Route(path, handler, methods=["GET"]) for path, handler in handlers.items()]


def client_address(request: Request) -> str:
    return request.client.host if request.client else "-"


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
        self.env = templates()
        self.static = static_files()
        css = self.static["app.css"].body.decode().strip()
        self.css = Markup(css)
        self.style_hash = base64.b64encode(hashlib.sha256(css.encode()).digest()).decode()
        self.env.globals["css"] = self.css
        self.env.globals["static"] = lambda name: f"/static/{name}?v={self.static[name].version}"
        self.checker = settings.checker or DocumentChecker(settings.store, settings.base_url,
                                                          allow_private=settings.allow_private_fetch)
        self.html_cache: LRU[tuple[Any, ...], Cached] = LRU(4096)
        self._json: LRU[tuple[Any, ...], bytes] = LRU(4096)

    # -- small helpers --------------------------------------------------------------------------------

    def explorer(self, kind: str, ident: str) -> str | None:
        return presenters.explorer_link(self.settings.explorer, kind, ident)

    with_lang = staticmethod(presenters.with_lang)

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

    def error_page(self, request: Request, status: int, message_key: str, *, title_key: str | None = None,
                   **values: str) -> Response:
        """The error page in the visitor's language: the message `message_key` filled with `values`."""
        lang, explicit = i18n.pick_language(request.query_params.get("lang"), request.headers.get("accept-language"))
        t = i18n.MESSAGES[lang]
        cached = self.render("error.html", **self.context(lang, explicit, quote(request.url.path, safe="/:")),
                             message=i18n.fill(t[message_key], **values), title=t[title_key] if title_key else None)
        response = self.respond_html(cached, request, lang, status)
        response.headers["Cache-Control"] = "no-store"
        return response

    async def view(self, token_id: int) -> View | None:
        try:
            return await self.chain.order(token_id)
        except (NodeUnavailable, RpcError, ConfigurationError) as exc:
            raise Unavailable(str(exc)) from exc

    # -- the order page's values ----------------------------------------------------------------------

    def order_values(self, view: View, lang: str, explicit: bool, check: DocumentCheck | None,
                     linked: dict[int, tuple[str, str] | None]) -> dict[str, Any]:
        return presenters.order_values(view, lang, explicit, check, linked, explorer=self.settings.explorer,
                                       contract=self.chain.registry.address, chain_id=self.chain.chain_id)

    def document_values(self, check: DocumentCheck | None, url: str, lang: str, explicit: bool,
                        verify_path: str) -> dict[str, str]:
        return presenters.document_values(check, url, lang, explicit, verify_path)

    # -- JSON (rendered once per token, status and base URI epoch) ------------------------------------

    def record_json(self, view: View) -> bytes:
        key = (view.token_id, view.status_key, self.chain.epoch)
        cached = self._json.get(key)
        if cached is None:
            cached = presenters.dumps(presenters.record_json(
                view, base_url=self.settings.base_url, contract=self.chain.registry.address,
                chain_id=self.chain.chain_id))
            self._json.put(key, cached)
        return cached

    def metadata_json(self, view: View) -> bytes:
        key = ("meta", view.token_id, view.status_key, self.chain.epoch)
        cached = self._json.get(key)
        if cached is None:
            cached = presenters.dumps(presenters.metadata_json(view, base_url=self.settings.base_url))
            self._json.put(key, cached)
        return cached
