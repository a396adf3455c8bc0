"""What the page shows of an order, as plain values for the templates and the JSON answers.

Everything the chain holds is text from a registrar and may carry markup or look-alike characters: the
templates autoescape every value, :func:`isolated` and :func:`marked` make outside text safe inside our
sentences, and only http(s) URLs become links (:func:`is_web_url`). These functions only compute; the
caching of rendered pages and JSON bodies is :class:`~peru_compras.web.page.Page`'s.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from markupsafe import Markup, escape

from .. import service
from ..hashing import hashlink, keccak256
from ..order import Party
from ..urls import token_hex
from . import i18n
from .chainview import View
from .published import DocumentCheck


def dumps(value: dict[str, Any]) -> bytes:
    """Compact UTF-8 JSON (the page's API bodies)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def is_web_url(url: str) -> bool:
    """Only http(s) URLs become links (a registrar's text could say ``javascript:…``)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.netloc) and url.isprintable() and " " not in url


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


def with_lang(path: str, lang: str, explicit: bool, **params: str) -> str:
    """`path` with `params`, and ``lang`` when the visitor chose the language explicitly."""
    query = dict(params)
    if explicit:
        query["lang"] = lang
    return path + ("?" + urlencode(query) if query else "")


def explorer_link(template: str | None, kind: str, ident: str) -> str | None:
    """The block explorer's URL for a ``tx``, ``address`` or ``block`` (None without a template)."""
    if not template:
        return None
    return template.replace("{kind}", kind).replace("{id}", quote(ident, safe=""))


def party_id(party: Party) -> str:
    if party.id is None:
        return ""
    return f"RUC {party.id}" if party.scheme == "PE-RUC" else f"{party.scheme} {party.id}"


def order_values(view: View, lang: str, explicit: bool, check: DocumentCheck | None,
                 linked: dict[int, tuple[str, str] | None], *, explorer: str | None, contract: str,
                 chain_id: int | None) -> dict[str, Any]:
    """The order page's values: the verdict, the record, the status block and the document check.

    `linked` maps the replacing/replaced token ids to (order number, verify path), None when unreadable;
    `explorer` is the block-explorer template (or None)."""
    t = i18n.MESSAGES[lang]
    record, state = view.record, view.state
    order = record.order

    def other_order(token: int) -> tuple[str, str | None]:
        found = linked.get(token)
        if found is None:
            return token_hex(token), with_lang(f"/t/{token_hex(token)}", lang, explicit)
        return i18n.fill(t["order_token"], number=found[0]), with_lang(found[1], lang, explicit)

    changed = i18n.format_timestamp(state.status_changed_at, lang) if state.status_changed_at else ""
    link = None
    rows: list[dict[str, str | None]] = []
    if state.status == "annulled":
        reason = isolated(record.annul_reason or "—")  # an annuller's bytes: may hold U+202E
        verdict = {"kind": "bad", "mark": "✗", "title": t["verdict_annulled"],
                   "body": Markup(escape(t["verdict_annulled_body"])).format(date=changed, reason=reason)}
        status_block = {"kind": "bad", "mark": "✗", "title": t["check_status_annulled"], "body": ""}
        rows += [{"label": t["annul_reason"], "value": reason, "url": None},
                 {"label": t["annul_date"], "value": changed, "url": None}]
    elif state.status == "superseded" and state.replaced_by:
        text, url = other_order(state.replaced_by)
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
    if state.replaces:
        text, url = other_order(state.replaces)
        rows.append({"label": t["replaces"], "value": text, "url": url})
    status_values: dict[str, Any] = {**status_block, "rows": rows}
    verdict_values: dict[str, Any] = {**verdict, "link": link}

    delivery = order.delivery
    if delivery.term_days is not None:
        term = t["term_day"] if delivery.term_days == 1 else i18n.fill(t["term_days"], days=delivery.term_days)
    else:
        term = i18n.fill(t["deadline"], date=i18n.format_date(delivery.deadline or "", lang))
    hex_id = token_hex(view.token_id)
    check_url = f"/api/orders/{hex_id}/document"
    doc = document_values(check, record.document_url, lang, explicit, order.verify_path)
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
        "document_url": record.document_url,
        "document_link": is_web_url(record.document_url),
        "hashlink": hashlink(state.document_hash),
        "sha256": state.document_hash.hex(),
        "block": f"{record.block_number:,}".replace(",", "\u202f") if lang == "es" else f"{record.block_number:,}",
        "block_link": explorer_link(explorer, "block", str(record.block_number)),
        "registered_at": i18n.format_timestamp(view.registered_at, lang) if view.registered_at else "",
        "tx": record.tx_hash,
        "tx_link": explorer_link(explorer, "tx", record.tx_hash),
        "registrar": record.registrar,
        "registrar_link": explorer_link(explorer, "address", record.registrar) if record.registrar.startswith("0x")
        else None,
        "contract": contract,
        "contract_link": explorer_link(explorer, "address", contract),
        "chain_id": chain_id,
        "token_hex": hex_id,
        "status": status_values,
        "doc": doc,
        "api_url": f"/api/orders/{hex_id}",
        "data": {"sha256": state.document_hash.hex(), "status": state.status, "check_url": check_url,
                 "messages": messages,
                 # for the signed QR's check in the browser (/verificar/check.js): what the signature covers
                 "record_hash": "0x" + keccak256(order.canonical_bytes()).hex(), "registrar": record.registrar,
                 "contract": contract, "chain_id": chain_id},
    }


def document_values(check: DocumentCheck | None, url: str, lang: str, explicit: bool,
                    verify_path: str) -> dict[str, str]:
    """The published-document block: refused (not a web URL), pending (not checked yet) or the outcome."""
    t = i18n.MESSAGES[lang]
    if not is_web_url(url):
        return {"state": "refused", "kind": "warn", "mark": "!", "text": t["doc_refused"], "detail": "",
                "check_url": ""}
    if check is None:
        return {"state": "pending", "kind": "info", "mark": "?", "text": t["doc_pending"], "detail": "",
                "check_url": with_lang(verify_path, lang, explicit, doc="1") + "#documento"}
    kind = {"original": "ok", "altered": "bad", "missing": "bad"}.get(check.outcome, "warn")
    mark = {"ok": "✓", "bad": "✗"}.get(kind, "!")
    detail = i18n.fill(t["doc_checked_at"], date=i18n.format_timestamp(int(check.checked_at), lang))
    if check.outcome == "altered" and check.sha256:
        detail += f" SHA-256: {check.sha256}"
    return {"state": check.outcome, "kind": kind, "mark": mark, "text": t[f"doc_{check.outcome}"],
            "detail": detail, "check_url": ""}


def record_json(view: View, *, base_url: str, contract: str, chain_id: int | None) -> dict[str, Any]:
    """``GET /api/orders/{token_id}``: the one record JSON (:func:`peru_compras.service.record_json`, as
    ``show --json`` prints it), with the status fields always present and what only the page knows."""
    out: dict[str, Any] = {"token_id": token_hex(view.token_id), **service.record_json(view.record, base_url)}
    for absent in ("annul_reason", "replaced_by", "supersedes"):
        out.setdefault(absent, None)
    out.update(status_changed_at=view.state.status_changed_at or None, registered_at=view.registered_at,
               contract=contract, chain_id=chain_id)
    return out


def metadata_json(view: View, *, base_url: str) -> dict[str, Any]:
    """``GET /api/tokens/{token_id}``: the ERC-721 metadata (what ``tokenURI`` points to)."""
    record, order = view.record, view.order
    status_es = {"valid": "vigente", "annulled": "anulada", "superseded": "reemplazada"}[view.state.status]
    total = i18n.format_amount(order.total_amount, order.currency)
    return {
        "name": f"Orden de compra {order.order_number}",
        "description": f"Orden de compra {order.order_number} de {order.entity.name} a {order.supplier.name} "
                       f"por {total}; estado: {status_es}.",
        "external_url": base_url + order.verify_path,
        "image": base_url + "/static/token.svg",
        "attributes": [
            {"trait_type": "entity", "value": order.entity.name},
            {"trait_type": "entity_id", "value": order.entity.key},
            {"trait_type": "order_number", "value": order.order_number},
            {"trait_type": "supplier", "value": order.supplier.name},
            {"trait_type": "issued_on", "value": order.issued_on},
            {"trait_type": "total", "value": order.total_amount},
            {"trait_type": "currency", "value": order.currency},
            {"trait_type": "status", "value": view.state.status},
            {"trait_type": "sha256", "value": record.state.document_hash.hex()},
            {"trait_type": "document_url", "value": record.document_url},
        ],
    }
