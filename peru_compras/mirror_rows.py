"""The rows one registration becomes in the mirror (:mod:`.mirror`): the on-chain entry decoded and
validated as ``show`` does (decoding in worker processes was tried: on this 2-core machine it was slower
than in the writing process, see benchmarks/results/mirror.json)."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from .chain.abi import to_checksum_address
from .errors import PeruComprasError
from .hashing import hashlink
from .order import Order, decode_entry
from .urls import token_hex

#: (token id, entry bytes or None, document hash topic or None, registrar topic or None, block time, place)
Job = tuple[int, bytes | None, str | None, str | None, str, dict[str, Any]]
#: (the orders row, its items rows, its parties rows)
Rows = tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]


@cache
def address(word: str) -> str:
    """The checksummed address in a 32-byte topic (a few accounts, seen many times: cached)."""
    return str(to_checksum_address("0x" + word[-40:]))


def _decoded(entry: bytes | None, digest: bytes | None) -> tuple[Order | None, str | None]:
    if entry is None:
        return None, ("its record is not in the registering transaction's calldata (a call shape this version "
                      "cannot read)")
    try:
        entry_digest, order = decode_entry(entry)
    except RecursionError:
        return None, "the record is nested too deeply"
    except PeruComprasError as exc:
        return None, exc.message
    except Exception as exc:  # noqa: BLE001 — a registrar's bytes: any shape, reported on the row
        return None, f"{type(exc).__name__}: {str(exc)[:200]}"
    if digest is not None and entry_digest != digest:
        return None, "the calldata's document hash is not the one the event logged"
    return order, None


def registration(job: Job, base: str) -> Rows:
    """The rows of one registration; an entry that cannot be read gets a row with `record_error` saying why
    (and the store URL, so its document can still be audited)."""
    token, entry, digest_topic, registrar_topic, when, where = job
    digest = bytes.fromhex(digest_topic[2:]) if digest_topic else None
    link = hashlink(digest) if digest else None
    row: dict[str, Any] = {"token_id": token_hex(token), "status": "valid", "registered_at": when,
                           "registrar": address(registrar_topic) if registrar_topic else None,
                           "document_sha256": digest.hex() if digest else None, "document_hashlink": link, **where}
    order, error = _decoded(entry, digest)
    if order is None:
        failed = {"published_url": base + link if link else None, "record_error": (error or "unreadable")[:500]}
        return {**row, **failed}, [], []
    parties: list[dict[str, Any]] = []
    for role, party in (("buyer", order.buyer), ("entity", order.entity), ("supplier", order.supplier)):
        if party.id is not None:  # the entity's and supplier's names win over a buyer's with the same id
            key = f"{party.scheme}:{party.id}"
            parties.append({"id": key, "scheme": party.scheme, "identifier": party.id, "name": party.name})
            row[f"{role}_id"] = key
        row[f"{role}_name"] = party.name
    items = [{"token_id": row["token_id"], "position": position, "description": item.description,
              "quantity": item.quantity, "unit": item.unit, "unit_price": item.unit_price, "cubso": item.cubso}
             for position, item in enumerate(order.items, 1)]
    row.update(order_key=order.key, order_number=order.order_number, issued_on=order.issued_on,
               total_amount=order.total_amount, total_value=float(order.total_amount), currency=order.currency,
               items_count=len(order.items), delivery_place=order.delivery.place,
               delivery_term_days=order.delivery.term_days, delivery_deadline=order.delivery.deadline,
               document_url=order.document_url, published_url=order.document_url or base + str(link),
               notes=json.dumps(list(order.notes), ensure_ascii=False) if order.notes else None)
    return row, items, parties
