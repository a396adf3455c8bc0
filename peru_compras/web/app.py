"""The verification page: one order per URL (``/o/<entity>/<order number>``), readable without JavaScript.

Routes (the JSON ones are described at ``/openapi.json``):

- ``GET /o/{entity}/{order_number}``: the order's page (Spanish; ``?lang=en`` or Accept-Language for
  English; ``?doc=1`` runs the published-document check without JavaScript)
- ``GET /`` and ``GET /buscar``: search by entity and order number, by token id, by document hash
- ``GET /t/{token_id}``: redirect to the order's page
- ``GET /d/{hashlink}``: a PDF from the built-in document store
- ``GET /api/orders/{token_id}``, ``GET /api/orders/{token_id}/document``, ``GET /api/tokens/{token_id}``
  (the ERC-721 metadata ``tokenURI`` points to), ``GET /healthz``, ``GET /openapi.json``
- ``GET /verificar`` (the offline verifier of signed QR codes) and ``GET /trust-pack.json``: :mod:`.verifier`
- ``GET /entidad/{ruc}`` and ``GET /proveedor/{ruc}`` (only with a mirror, ``PERU_COMPRAS_MIRROR``): :mod:`.lists`

This module only wires the parts together:

- :mod:`.security`: the security headers (CSP, HSTS…) and request limits around every answer
- :mod:`.page`: settings, templates and the caches of rendered pages; :mod:`.presenters`: what is shown
- :mod:`.views`: the HTML routes; :mod:`.api`: the JSON routes and their OpenAPI description
- :mod:`.chainview`: the cached chain reads; :mod:`.published`: the published-document check

Everything the chain holds is text from a registrar and may carry markup: templates autoescape every
value, JSON inside pages goes through ``|tojson``, links are only made from http(s) URLs, and a strict
Content-Security-Policy backs that up.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from ..chain.client import Registry
from ..errors import NotChecked, PeruComprasError, Unavailable, UnreadableRecord
from ..urls import parse_token
from . import api, lists, verifier, views
from .api import openapi_schema
from .chainview import ChainView
from .page import Page, PageSettings, token_of
from .presenters import isolated, marked
from .security import DOCUMENT_CSP, HSTS, MAX_BODY, MAX_URL, Guard, Handler, content_security_policy

# what app.py defined before the split, still importable from here (a shim: new code imports the module)
__all__ = ["DOCUMENT_CSP", "HSTS", "MAX_BODY", "MAX_URL", "Guard", "Page", "PageSettings", "Unavailable",
           "app_from_workspace", "content_security_policy", "create_app", "isolated", "marked", "openapi_schema",
           "parse_token", "token_of"]

#: where the routes come from, each ``(page) -> routes``, in the order Starlette tries them (a module that
#: adds pages — the offline verifier, list pages — adds its ``routes`` function here: one line)
ROUTE_SOURCES: tuple[Callable[[Page], list[BaseRoute]], ...] = (views.routes, api.routes, verifier.routes,
                                                               lists.routes)
#: the hottest GET routes, answered without the router: each ``(page, path) -> handler or None``
FAST_SOURCES: tuple[Callable[[Page, str], Handler | None], ...] = (views.fast, api.fast)


def _exception_handlers(page: Page) -> dict[Any, Callable[[Request, Exception], Any]]:
    """Every error is one line of JSON under ``/api/`` and the error page elsewhere; never a traceback."""

    async def unavailable(request: Request, exc: Exception) -> Response:
        # Nodes that disagree (or one of them down, under a quorum) are "could not be checked": never a verdict
        cause = exc.__cause__ if isinstance(exc.__cause__, NotChecked) else exc
        if isinstance(cause, NotChecked):
            if request.url.path.startswith("/api/"):
                return api.problem(503, "not_checked", f"could not be checked: {cause.node}: {cause.reason}")
            return page.error_page(request, 503, "error_not_checked", title_key="error_not_checked_h",
                                   node=cause.node, reason=cause.reason)
        if request.url.path.startswith("/api/"):
            return api.problem(503, "unavailable", "the chain cannot be read right now")
        return page.error_page(request, 503, "error_unavailable")

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if request.url.path.startswith("/api/") or exc.status_code in (405, 413):
            return api.problem(exc.status_code, "http", str(exc.detail))
        return page.error_page(request, exc.status_code, "error_not_found" if exc.status_code == 404
                               else "error_generic")

    async def unreadable(request: Request, exc: Exception) -> Response:
        if request.url.path.startswith("/api/"):
            return api.problem(502, "unreadable", "the on-chain record could not be read")
        return page.error_page(request, 502, "error_unreadable" if isinstance(exc, UnreadableRecord)
                               else "error_generic")

    async def internal(request: Request, exc: Exception) -> Response:
        # Nothing from outside should get here; if it does, the answer is still one line of JSON (or the
        # error page), never a traceback or an object's repr.
        if request.url.path.startswith("/api/"):
            return api.problem(500, "internal", "the request could not be served")
        return page.error_page(request, 500, "error_generic")

    return {StarletteHTTPException: http_error, Unavailable: unavailable, PeruComprasError: unreadable,
            Exception: internal}


def create_app(registry: Callable[[], Registry], settings: PageSettings) -> Guard:
    """The page for the registry `registry()` returns (called once, when first needed): a Starlette app
    inside :class:`Guard`, which adds the security headers and size limits."""
    page = Page(ChainView(registry, sync_interval=settings.sync_interval), settings)
    routes = [route for source in ROUTE_SOURCES for route in source(page)]

    def fast(path: str) -> Handler | None:
        """The order page and the two JSON reads, routed by prefix (Starlette's router and middleware cost
        about as much as the handler itself); anything else, and every error, goes through the app."""
        for source in FAST_SOURCES:
            handler = source(page, path)
            if handler is not None:
                return handler
        return None

    app = Starlette(routes=routes, exception_handlers=_exception_handlers(page))
    app.state.page = page
    return Guard(app, content_security_policy(page.style_hash), fast)


def app_from_workspace(ws: Any, *, explorer: str | None = None) -> Guard:
    """The page for a :class:`~peru_compras.workspace.Workspace`: its registry, its document store, its base
    URL. The block-explorer template comes from `explorer` or the settings' ``explorer_url``
    (``PERU_COMPRAS_EXPLORER_URL``)."""
    from ..chain.quorum import read_rpc

    settings = ws.settings

    def registry() -> Registry:
        found: Registry = ws.registry()
        headers = {"Authorization": f"Bearer {settings.rpc_token}"} if settings.rpc_token else None
        # every node of PERU_COMPRAS_RPC, each asked once per read (the page answers "not checked" at once)
        rpc = read_rpc(settings.rpc_urls or (found.rpc.url,), quorum=settings.rpc_quorum, headers=headers,
                       timeout=5.0, attempts=1)
        return Registry(rpc, found.address, from_block=found.from_block)

    page_settings = PageSettings(base_url=settings.base_url, store=ws.store,
                                 explorer=explorer or settings.explorer_url or None, mirror=settings.mirror)
    return create_app(registry, page_settings)
