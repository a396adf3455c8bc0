"""OCDS out: the registered orders as an OCDS 1.1 release package, one release per order read from the chain,
written with the exact decimals registered."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from ..errors import OrderNotRegistered, UnreadableRecord
from ..hashing import hashlink
from ..urls import token_hex

if TYPE_CHECKING:
    from ..chain.client import OnChainOrder, Registry

#: ``ocid`` = ``<prefix>-<entity>-<order number>``; not registered with the Open Contracting Partnership:
#: publishers with a registered prefix pass theirs (``export-ocds --ocid-prefix``).
OCID_PREFIX = "ocds-pecomp"
LOCATION_EXTENSION = ("https://raw.githubusercontent.com/open-contracting-extensions/ocds_location_extension/"
                      "v1.1.4/extension.json")

def _amount(text: str) -> Decimal:
    return Decimal(text)


def _iso(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _org_id(party: Any) -> str:
    return f"{party.scheme}-{party.id}" if party.id else "unidentified"


def _organization(party: Any, party_id: str, roles: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {"id": party_id, "name": party.name}
    if party.id:
        out["identifier"] = {"scheme": party.scheme, "id": party.id, "legalName": party.name}
    out["roles"] = roles
    return out


def release_for(record: OnChainOrder, *, chain_id: int, registry: str, date_time: str, verify_url: str,
                ocid_prefix: str = OCID_PREFIX) -> dict[str, Any]:
    """One OCDS release for one registered order (see README's "OCDS: import mapping and export")."""
    order, state = record.order, record.state
    entity_id = _org_id(order.entity)
    parties = [_organization(order.entity, entity_id, ["buyer"])]
    if order.buyer == order.entity:
        parties[0]["roles"].append("procuringEntity")
    else:
        parties.append(_organization(order.buyer, _org_id(order.buyer) + "-procuringEntity", ["procuringEntity"]))
    supplier_id = _org_id(order.supplier)
    if supplier_id in {p["id"] for p in parties}:
        supplier_id += "-supplier"
    parties.append(_organization(order.supplier, supplier_id, ["supplier"]))
    value = {"amount": _amount(order.total_amount), "currency": order.currency}
    items = []
    for index, item in enumerate(order.items, start=1):
        entry: dict[str, Any] = {"id": str(index), "description": item.description,
                                 "quantity": _amount(item.quantity), "unit": {"name": item.unit}}
        if item.unit_price is not None:
            entry["unit"]["value"] = {"amount": _amount(item.unit_price), "currency": order.currency}
        if item.cubso is not None:
            entry["classification"] = {"scheme": "CUBSO", "id": item.cubso}
        entry["deliveryLocation"] = {"description": order.delivery.place}
        items.append(entry)
    period: dict[str, Any] = ({"durationInDays": order.delivery.term_days} if order.delivery.term_days is not None
                              else {"endDate": f"{order.delivery.deadline}T23:59:59Z"})
    contract: dict[str, Any] = {
        "id": order.order_number, "awardID": order.order_number, "title": f"Orden de compra N° {order.order_number}",
        "dateSigned": f"{order.issued_on}T00:00:00Z", "value": value, "items": items, "period": period,
        "documents": [{
            "id": "order-pdf", "documentType": "contractSigned", "title": f"Orden de compra N° {order.order_number}",
            "url": record.document_url, "format": "application/pdf", "language": "es",
            "integrity": [{"scheme": "sha256", "id": state.document_hash.hex()}],
        }],
    }
    if state.status == "annulled":
        contract["status"] = "cancelled"
    registration: dict[str, Any] = {
        "chainId": chain_id, "registry": registry, "tokenId": token_hex(record.token_id),
        "transactionHash": record.tx_hash, "blockNumber": record.block_number, "registrar": record.registrar,
        "status": state.status, "hashlink": hashlink(state.document_hash), "verifyUrl": verify_url,
    }
    if record.annul_reason is not None:
        registration["annulReason"] = record.annul_reason
    if order.notes:
        registration["recordNotes"] = list(order.notes)
    if state.replaces:
        registration["supersedes"] = token_hex(state.replaces)
    if state.replaced_by:
        registration["supersededBy"] = token_hex(state.replaced_by)
    entity_key = order.entity.key.replace(":", "-")
    return {
        "ocid": f"{ocid_prefix}-{entity_key}-{order.order_number}",
        "id": token_hex(record.token_id) + ("" if state.status == "valid" else f"-{state.status}"),
        "date": date_time, "tag": ["contract"], "initiationType": "tender", "language": "es",
        "buyer": {"id": entity_id, "name": order.entity.name},
        "parties": parties,
        "awards": [{"id": order.order_number, "status": "active", "value": value,
                    "suppliers": [{"id": supplier_id, "name": order.supplier.name}]}],
        "contracts": [contract],
        "chainRegistration": registration,
    }


def export_package(registry: Registry, *, base_url: str, ocid_prefix: str = OCID_PREFIX,
                   publisher: str | None = None, tokens: Iterable[int] | None = None,
                   unreadable: Callable[[UnreadableRecord], None] | None = None) -> dict[str, Any]:
    """The registered orders as an OCDS 1.1 release package (amounts as :class:`~decimal.Decimal`; write it
    with :func:`dumps`). A token whose on-chain entry does not decode goes to `unreadable` and is left out
    (without `unreadable`, it stops the export)."""
    chain_id = int(registry.rpc.call("eth_chainId"), 16)
    times: dict[int, int] = {}

    def block_time(number: int) -> int:
        if number not in times:
            block = registry.rpc.call("eth_getBlockByNumber", [hex(number), False])
            times[number] = registry.rpc.int_field(block, "timestamp", "eth_getBlockByNumber")
        return times[number]

    releases = []
    for token_id in (registry.token_ids() if tokens is None else tokens):
        try:
            record = registry.read(token_id)
        except UnreadableRecord as exc:
            if unreadable is None:
                raise
            unreadable(exc)
            continue
        moment = max(block_time(record.block_number), record.state.status_changed_at)
        releases.append(release_for(record, chain_id=chain_id, registry=registry.address, date_time=_iso(moment),
                                    verify_url=base_url.rstrip("/") + record.order.verify_path,
                                    ocid_prefix=ocid_prefix))
    if not releases:
        raise OrderNotRegistered(f"registry {registry.address} has no registered orders to export",
                                 hint="register orders first (register or register-batch)")
    return {
        "uri": f"{base_url.rstrip('/')}/ocds/{chain_id}/{registry.address}/release-package.json",
        "version": "1.1",
        "publishedDate": max(release["date"] for release in releases),
        "publisher": {"name": publisher or f"peru-compras registry {registry.address} (chain {chain_id})"},
        "extensions": [LOCATION_EXTENSION],
        "releases": releases,
    }


_RAW = re.compile(r'"\\u0000(-?[0-9]+(?:\.[0-9]+)?)\\u0000"')


def dumps(package: Any, *, indent: int | None = 2) -> str:
    """JSON with every :class:`~decimal.Decimal` written as the exact number it holds (``18.50`` stays
    ``18.50``, never ``18.5`` or a rounded float)."""

    def exact(value: Any) -> str:
        if isinstance(value, Decimal):
            return f"\x00{format(value, 'f')}\x00"
        raise TypeError(f"{type(value).__name__} is not JSON serializable")

    text = json.dumps(package, ensure_ascii=False, indent=indent, default=exact)
    return _RAW.sub(r"\1", text)
