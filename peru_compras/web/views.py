"""The HTML routes: the order page ``/o/{entity}/{order number}``, search (``/``, ``/buscar``, ``/search``),
``/t/{token_id}`` (a redirect to the order's page), ``/d/{hashlink}`` (a PDF of the built-in store), the
static files and the favicon. Every page reads without JavaScript."""

from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import quote

from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute

from ..errors import InvalidInput, NodeUnavailable, RpcError, Unavailable
from ..hashing import parse_digest
from ..service import reference
from ..urls import DOCUMENT_PATH, parse_token
from . import i18n, lists
from .chainview import View
from .page import Page, client_address, get_routes, token_of
from .presenters import is_web_url
from .published import DocumentCheck
from .security import DOCUMENT_CSP, Handler


async def order_page(page: Page, request: Request, entity: str, order_number: str) -> Response:
    lang, explicit = i18n.pick_language(request.query_params.get("lang"), request.headers.get("accept-language"))
    token_id = token_of(entity, order_number)
    view = await page.view(token_id)
    if view is None:
        path = "/o/" + quote(entity, safe=":") + "/" + quote(order_number, safe="")
        t = i18n.MESSAGES[lang]
        key: tuple[Any, ...] = ("missing", token_id, lang, explicit)
        cached = page.html_cache.get(key)
        if cached is None:
            cached = page.render(
                "missing.html", **page.context(lang, explicit, path),
                body=i18n.fill(t["verdict_missing_body"], number=order_number, entity=entity),
                form={"entidad": entity, "numero": order_number, "q": ""})
            page.html_cache.put(key, cached)
        response = page.respond_html(cached, request, lang, 404)
        response.headers["Cache-Control"] = "no-store"
        return response
    record, state = view.record, view.state
    check: DocumentCheck | None
    if request.query_params.get("doc") == "1" and is_web_url(record.document_url):
        check = await page.checker.check(token_id, record.document_url, state.document_hash, client_address(request))
    else:
        check = page.checker.cached(token_id, record.document_url)
    linked = {}
    for other in (state.replaced_by, state.replaces):
        if other:
            found = await page.view(other)
            linked[other] = (found.order.order_number, found.order.verify_path) if found else None
    key = (token_id, lang, explicit, view.status_key, page.chain.epoch,
           (check.outcome, int(check.checked_at)) if check else None)
    cached = page.html_cache.get(key)
    if cached is None:
        cached = page.render("order.html", **page.context(lang, explicit, view.order.verify_path),
                             p=page.order_values(view, lang, explicit, check, linked))
        page.html_cache.put(key, cached)
    return page.respond_html(cached, request, lang)


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
    listed = await (lists.search_target(page, query) if query
                    else lists.search_target(page, entity if not number else "", prefer="entidad"))
    if listed is not None:  # "every order of RUC X", with a mirror (web/lists.py)
        return RedirectResponse(page.with_lang(listed, lang, explicit), status_code=303)
    if entity or number:
        if not (entity and number):
            message, status = t["search_bad_entity"], 400
        else:
            view = await page.view(token_of(entity, number))
            if view is not None:
                return RedirectResponse(page.with_lang(view.order.verify_path, lang, explicit), status_code=303)
            message, status = i18n.fill(t["search_not_found"], query=f"{entity}/{number}"), 404
    elif query:
        found = await lookup(page, query)
        if isinstance(found, View):
            return RedirectResponse(page.with_lang(found.order.verify_path, lang, explicit), status_code=303)
        message, status = i18n.fill(t[found], query=query), (400 if found == "search_bad" else 404)
    cached = page.render("search.html", **page.context(lang, explicit, "/buscar"), form=form, message=message,
                         message_kind="bad" if status >= 400 else "info")
    response = page.respond_html(cached, request, lang, status)
    if params:
        response.headers["Cache-Control"] = "no-store"
    return response


async def lookup(page: Page, query: str) -> View | str:
    """The order a token id, document hash or ENTITY/NUMBER names (the rules of :func:`service.reference`,
    the CLI's), or the message key saying why not. Walked through the page's caches: a token first, then the
    document hash."""
    try:
        named = reference(query)
    except InvalidInput:
        return "search_bad"
    if named.token_id is not None:
        found = await page.view(named.token_id)
        if found is not None:
            return found
    if named.digest is not None:
        try:
            ids = await page.chain.find_by_hash(named.digest)
        except (NodeUnavailable, RpcError) as exc:
            raise Unavailable(str(exc)) from exc
        if ids:
            found = await page.view(ids[0])
            if found is not None:
                return found
    return "search_not_found"


# --------------------------------------------------------------------------------------------------
# The routes


def routes(page: Page) -> list[BaseRoute]:
    """The HTML routes for `page` (the order page first: Starlette tries them in order)."""
    store = page.settings.store

    async def order(request: Request) -> Response:
        return await order_page(page, request, request.path_params["entity"], request.path_params["order_number"])

    async def search(request: Request) -> Response:
        return await search_page(page, request)

    async def token(request: Request) -> Response:
        token_id = parse_token(request.path_params["token_id"])
        found = None if token_id is None else await page.view(token_id)
        if found is None:
            return page.error_page(request, 400 if token_id is None else 404, "error_not_found")
        lang, explicit = i18n.pick_language(request.query_params.get("lang"), request.headers.get("accept-language"))
        return RedirectResponse(page.with_lang(found.order.verify_path, lang, explicit), status_code=303)

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
            data = await page.chain.run(("doc", digest), lambda: store.get(digest))
        if data is None:
            raise StarletteHTTPException(404)
        if hashlib.sha256(data).digest() != digest:
            return page.error_page(request, 500, "error_generic")
        return Response(data, media_type="application/pdf", headers=headers)

    return get_routes({"/o/{entity}/{order_number:path}": order, "/static/{name}": static,
                       DOCUMENT_PATH + "{name}": document,
                       "/": search, "/buscar": search, "/search": search, "/t/{token_id}": token,
                       "/favicon.ico": favicon})


def fast(page: Page, path: str) -> Handler | None:
    """The order page by prefix, without the router (see :data:`~peru_compras.web.security.FastRoutes`)."""
    if path.startswith("/o/"):
        entity, _, number = path[3:].partition("/")
        if entity and number:
            return lambda request: order_page(page, request, entity, number)
    return None
