"""The list pages, when the page has a mirror (``PERU_COMPRAS_MIRROR``, a file ``peru-compras mirror`` built):
``/entidad/{ruc}`` and ``/proveedor/{ruc}``, that party's orders newest first, ``?pagina=N`` pages of a fixed
size; and the search page's answer to an 11-digit RUC (:func:`search_target`). Without the setting these
URLs are not routed (404) and search is unchanged.

The mirror is a copy: each list says up to which block, and each row links to the order's own page, which
reads the chain and remains the check. The file is opened read-only (``mode=ro``) per request, every query
is parameterised and bounded in time (a progress handler interrupts it), and every value is escaped by the
templates like any other registrar's text.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from ..order import ruc_is_valid
from . import i18n
from .page import Page, get_routes

#: ``/entidad/…`` and ``/proveedor/…``: the path word, the mirror's column prefix, the other party shown
ROLES = {"entidad": ("entity", "supplier"), "proveedor": ("supplier", "entity")}
PAGE_SIZE = 50
MAX_PAGE = 10_000  # ?pagina= beyond this is refused (an OFFSET that deep is a scan, not a page)
QUERY_SECONDS = 2.0
_RUC_SCHEME = "PE-RUC"


class MirrorUnreadable(Exception):
    """The mirror file cannot be opened or read, or a query ran past its time."""


@dataclass(frozen=True)
class Listing:
    name: str
    total: int
    block: int
    rows: list[dict[str, Any]]


def is_ruc(text: str) -> bool:
    return ruc_is_valid(text)


class MirrorReader:
    """Read-only, time-bounded queries on the mirror at `path` (one connection per call: thread-safe)."""

    def __init__(self, path: Path, *, page_size: int = PAGE_SIZE, seconds: float = QUERY_SECONDS) -> None:
        self.path, self.page_size, self.seconds = path, page_size, seconds

    def _connect(self) -> sqlite3.Connection:
        uri = "file:" + quote(str(self.path.resolve())) + "?mode=ro"
        try:
            conn = sqlite3.connect(uri, uri=True, timeout=1.0)
        except sqlite3.Error as exc:
            raise MirrorUnreadable(str(exc)) from None
        deadline = time.monotonic() + self.seconds
        conn.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)
        conn.row_factory = sqlite3.Row
        return conn

    def _run(self, sql: str, args: tuple[Any, ...]) -> list[sqlite3.Row]:
        conn = self._connect()
        try:
            return list(conn.execute(sql, args))
        except sqlite3.Error as exc:  # interrupted, locked, not a mirror
            raise MirrorUnreadable(str(exc)) from None
        finally:
            conn.close()

    def roles_of(self, ruc: str) -> list[str]:
        """The path words (``proveedor``, ``entidad``) under which the mirror has orders of RUC `ruc`."""
        party = f"{_RUC_SCHEME}:{ruc}"
        found = []
        for word in ("proveedor", "entidad"):
            role = ROLES[word][0]
            if self._run(f"SELECT 1 FROM orders WHERE {role}_id = ? LIMIT 1", (party,)):
                found.append(word)
        return found

    def listing(self, word: str, ruc: str, number: int) -> Listing | None:
        """Page `number` (from 1) of the orders of RUC `ruc` as `word`'s role, newest first; None when the
        mirror has none."""
        role, other = ROLES[word]
        party = f"{_RUC_SCHEME}:{ruc}"
        total = int(self._run(f"SELECT count(*) FROM orders WHERE {role}_id = ?", (party,))[0][0])
        if total == 0:
            return None
        block = self._run("SELECT last_block FROM mirror LIMIT 1", ())
        names = self._run("SELECT name FROM parties WHERE id = ?", (party,))
        rows = self._run(
            f"SELECT order_key, order_number, issued_on, total_amount, currency, status, {other}_name AS other "
            f"FROM orders WHERE {role}_id = ? ORDER BY block_number DESC, log_index DESC LIMIT ? OFFSET ?",
            (party, self.page_size, (number - 1) * self.page_size))
        return Listing(name=str(names[0][0]) if names and names[0][0] else ruc, total=total,
                       block=int(block[0][0]) if block and block[0][0] is not None else 0,
                       rows=[dict(row) for row in rows])


def _order_path(row: dict[str, Any]) -> str | None:
    """``/o/<entity>/<number>`` from the row's key (the entity key is the key before ``/<number>``)."""
    key, number = str(row["order_key"] or ""), str(row["order_number"] or "")
    if not number or not key.endswith("/" + number):
        return None
    return "/o/" + quote(key[:-len(number) - 1], safe=":") + "/" + quote(number, safe="")


def _reader(page: Page) -> MirrorReader | None:
    mirror = page.settings.mirror
    return None if mirror is None else MirrorReader(Path(mirror), page_size=page.settings.mirror_page_size)


async def list_page(page: Page, request: Request, word: str, ruc: str) -> Response:
    lang, explicit = i18n.pick_language(request.query_params.get("lang"), request.headers.get("accept-language"))
    t = i18n.MESSAGES[lang]
    reader = _reader(page)
    assert reader is not None  # routed only with a mirror
    if not is_ruc(ruc):
        return page.error_page(request, 400, "list_bad_ruc", ruc=ruc[:40])
    raw = request.query_params.get("pagina", "1")
    number = int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 6 else 0
    if not 1 <= number <= MAX_PAGE:
        return page.error_page(request, 400, "list_bad_page", page=raw[:20], most=str(MAX_PAGE))
    try:
        found = await run_in_threadpool(reader.listing, word, ruc, number)
    except MirrorUnreadable:
        return page.error_page(request, 503, "list_unreadable")
    if found is None:
        return page.error_page(request, 404, f"list_none_{word}", ruc=ruc)
    pages = max(1, -(-found.total // reader.page_size))
    if number > pages:
        return page.error_page(request, 404, "list_no_page", page=str(number), pages=str(pages))
    path = f"/{word}/{ruc}"

    def at(n: int) -> str:
        return page.with_lang(path, lang, explicit, pagina=str(n))

    rows = []
    for row in found.rows:
        link = _order_path(row)
        rows.append({"url": page.with_lang(link, lang, explicit) if link else None, "number": row["order_number"],
                     "date": i18n.format_date(str(row["issued_on"] or ""), lang), "other": row["other"] or "",
                     "total": i18n.format_amount(str(row["total_amount"] or ""), row["currency"]),
                     "status": t.get(f"list_status_{row['status']}", str(row["status"]))})
    values = {"title": i18n.fill(t[f"list_{word}_h"], name=found.name), "ruc": ruc,
              "source": i18n.fill(t["list_source"], block=found.block),
              "count": i18n.fill(t["list_count"], count=found.total, page=number, pages=pages),
              "other_h": t["supplier"] if word == "entidad" else t["entity"], "rows": rows,
              "prev": at(number - 1) if number > 1 else None, "next": at(number + 1) if number < pages else None}
    context = page.context(lang, explicit, path)
    context["switch_url"] += f"&pagina={number}" if number > 1 else ""
    response = page.respond_html(page.render("list.html", **context, v=values), request, lang)
    response.headers["Cache-Control"] = "no-cache"
    return response


async def search_target(page: Page, text: str, *, prefer: str = "proveedor") -> str | None:
    """The list an 11-digit RUC typed in the search box leads to (`prefer`'s when it has orders as both: the
    supplier's for the free-text box, the entity's for the entity field), or None: no mirror, not a RUC, or
    no order of it in the mirror."""
    reader = _reader(page)
    ruc = text.strip()
    if reader is None or not is_ruc(ruc):
        return None
    try:
        words = await run_in_threadpool(reader.roles_of, ruc)
    except MirrorUnreadable:
        return None
    if not words:
        return None
    return f"/{prefer if prefer in words else words[0]}/{ruc}"


def routes(page: Page) -> list[BaseRoute]:
    """``/entidad/{ruc}`` and ``/proveedor/{ruc}`` when the page has a mirror; none otherwise (404)."""
    if page.settings.mirror is None:
        return []

    async def entity(request: Request) -> Response:
        return await list_page(page, request, "entidad", request.path_params["ruc"])

    async def supplier(request: Request) -> Response:
        return await list_page(page, request, "proveedor", request.path_params["ruc"])

    return get_routes({"/entidad/{ruc}": entity, "/proveedor/{ruc}": supplier})
