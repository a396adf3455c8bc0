"""The bytes of a record: its canonical JSON and the raw DEFLATE of an on-chain entry's body (the format is
described in :mod:`peru_compras.order`).

:func:`order_json` writes the canonical JSON of an order made by :func:`peru_compras.order.parse_order` by
hand: the same bytes as :func:`json_bytes` of its ``to_json()`` (keys in sorted order, each string through the
very function ``json.dumps(ensure_ascii=False)`` uses, ``term_days`` as json.dumps writes an int;
tests/test_order.py compares both on every shape of record and on generated ones), in 6.6 us against 14.9 us
for the reference record (timeit on the 2-core machine). It runs twice an order: the record, the entry body.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Mapping
from functools import cache
from importlib import resources
from json.encoder import encode_basestring
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .order import Item, Order, Party

#: a JSON string, quotes included, exactly as json.dumps(ensure_ascii=False) writes it
json_string = encode_basestring


def json_bytes(value: Mapping[str, Any]) -> bytes:
    """The canonical JSON of any record-shaped value: keys sorted, no white space, UTF-8."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


def party_json(party: Party) -> str:
    """``{"name"}``, ``{"name","ruc"}`` or ``{"id","name","scheme"}``, as :meth:`Party.to_json` gives."""
    if party.id is None:
        return '{"name":' + json_string(party.name) + "}"
    if party.ruc is not None:
        return '{"name":' + json_string(party.name) + ',"ruc":' + json_string(party.id) + "}"
    scheme = json_string(str(party.scheme))
    return '{"id":' + json_string(party.id) + ',"name":' + json_string(party.name) + ',"scheme":' + scheme + "}"


def _item_json(item: Item) -> str:
    text = '{"cubso":' + json_string(item.cubso) + "," if item.cubso is not None else "{"
    text += '"description":' + json_string(item.description) + ',"quantity":' + json_string(item.quantity)
    text += ',"unit":' + json_string(item.unit)
    return text + ("}" if item.unit_price is None else ',"unit_price":' + json_string(item.unit_price) + "}")


def order_json(order: Order, *, entity: str, number: str | None) -> bytes:
    """The canonical JSON of `order` (made by parse_order), with `entity` as its entity's JSON and `number` as
    its order number's (None: left out, as the entry body leaves it and the entity's identifier out)."""
    delivery = order.delivery
    parts = ['{"buyer":', party_json(order.buyer), ',"delivery":{']
    if delivery.deadline is not None:
        parts += ['"deadline":', json_string(delivery.deadline), ","]
    parts += ['"place":', json_string(delivery.place)]
    if delivery.term_days is not None:
        parts += [',"term_days":', int.__repr__(delivery.term_days)]
    parts.append("}")
    if order.document_url is not None:
        parts += [',"document_url":', json_string(order.document_url)]
    parts += [',"entity":', entity, ',"issued_on":', json_string(order.issued_on), ',"items":[',
              ",".join([_item_json(item) for item in order.items]), "]"]
    if order.notes:
        parts += [',"notes":[', ",".join([json_string(note) for note in order.notes]), "]"]
    if number is not None:
        parts += [',"order_number":', number]
    parts += [',"supplier":', party_json(order.supplier), ',"total":{"amount":', json_string(order.total_amount),
              ',"currency":', json_string(order.currency), "}}"]
    return "".join(parts).encode()


def deflate(body: bytes) -> bytes:
    """Raw DEFLATE, level 9, with the record dictionary: a new compressor each time (a primed one's copy()
    costs more, 10 us against 6.6 us, as it copies the whole state)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15, 9, zlib.Z_DEFAULT_STRATEGY, record_dictionary())
    return compressor.compress(body) + compressor.flush()


@cache
def record_dictionary() -> bytes:
    """The preset dictionary of version 1 entries (data/record-dictionary-v1.txt)."""
    return resources.files("peru_compras").joinpath("data/record-dictionary-v1.txt").read_bytes()
