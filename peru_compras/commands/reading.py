"""Commands that read the chain: show, verify. They never start the local chain or ask for a key."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from ..errors import InvalidInput
from .base import emit, err, hex_id, read_document, state, workspace

if TYPE_CHECKING:
    from ..chain.client import Registry
    from ..fetch import PublishedCheck

#: the first line of `verify`'s answer, per verdict
WORDS = {
    "authentic": "AUTHENTIC: this is the registered original",
    "altered": "ALTERED: this file is not the registered document",
    "not_registered": "NOT REGISTERED: no order on chain matches this file",
    "annulled": "ANNULLED: the order was registered and then annulled",
    "superseded": "SUPERSEDED: a corrected order replaced this one",
}


def show(ref: str = typer.Argument(..., metavar="TOKEN_ID|HASH|ENTITY_RUC/ORDER_NUMBER")) -> None:
    """Show an order's on-chain record and status.

    Example:
        peru-compras show 20131370998/OC-2026-004512
    """
    from .. import service

    ws = workspace()
    registry = ws.registry()
    record = registry.read(service.resolve(registry, ref))
    data = service.record_json(record, ws.base_url)
    human = [f"Orden {record.order.order_number} — {record.order.entity.name} ({record.order.entity.key})",
             f"  status: {record.state.status}" + (f" ({record.annul_reason})" if record.annul_reason else ""),
             f"  token {data['token_id']}", f"  tx {record.tx_hash} (block {record.block_number})",
             f"  registrar {record.registrar}", f"  document {data['hashlink']}", f"  {record.document_url}"]
    if record.state.replaced_by:
        human.insert(2, f"  replaced by {registry.read(record.state.replaced_by).order.order_number} "
                        f"(token {data['replaced_by']})")
    emit(data, "\n".join(human))


def verify(
    pdf: Path = typer.Argument(None, help="The PDF in hand (optional with --fetch and --token or --order-number)."),
    token: str = typer.Option(None, "--token", help="Check against this token."),
    order_number: str = typer.Option(None, "--order-number", help="Check against this order number…"),
    entity: str = typer.Option(None, "--entity", help="…of this entity (RUC)."),
    fetch: bool = typer.Option(False, "--fetch", help="Also download the registered document_url and check "
                               "that the published PDF is still the original."),
    fetch_host: list[str] = typer.Option(None, "--fetch-host", help="Allow --fetch to download from this host "
                                         "too (repeatable) [env PERU_COMPRAS_FETCH_HOSTS]."),
) -> None:
    """Is this PDF the registered original? Exit 0 only when authentic.

    The order is found from the PDF itself (the QR's verify URL, kept in its metadata, link and stamp, or
    decoded from the printed QR), else by --token or --order-number/--entity, else by the file's hash.
    With --fetch the published copy is downloaded too (allowed hosts only, size and time limits): exit 1
    when it is not the original, 2 when the settings forbid the download, 3 when it cannot be reached.

    Example:
        peru-compras verify orden-sellada.pdf --fetch
    """
    from .. import service

    if (order_number is None) != (entity is None):
        raise InvalidInput("--order-number and --entity go together", hint="give both, or --token, or neither")
    asked = token or (f"{entity}/{order_number}" if order_number else None)
    if pdf is None:
        if not fetch or not asked:
            raise InvalidInput("verify needs the PDF",
                               hint="give PDF, or --fetch with --token or --order-number/--entity")
        _verify_published_only(asked, fetch_host or [])
        return
    with read_document(pdf) as document:
        registry = workspace().registry()
        verdict = service.verify_pdf(registry, document,
                                     token_id=service.resolve(registry, asked) if asked else None)
    data = verdict.to_json()
    lines = [WORDS[verdict.status], f"  sha256   {data['sha256']}"]
    if verdict.expected_sha256 and verdict.expected_sha256 != verdict.sha256:
        lines.append(f"  expected {data['expected_sha256']}")
    if verdict.record is not None:
        lines.append(f"  order {verdict.record.order.order_number} of {verdict.record.order.entity.name} "
                     f"(token {data['token_id']})")
        if verdict.record.annul_reason:
            lines.append(f"  reason: {verdict.record.annul_reason}")
        if verdict.record.state.replaced_by:
            replacement = registry.read(verdict.record.state.replaced_by).order.order_number
            data["replaced_by_order_number"] = replacement
            lines.append(f"  replaced by {replacement} (token {hex_id(verdict.record.state.replaced_by)})")
    if verdict.status in ("not_registered", "altered") and asked:
        other = service.registered_as(registry, verdict.sha256, verdict.token_id)
        if other is not None:  # the file is on chain, as another order than the one asked about
            data["registered_as"] = {"order_number": other.order.order_number, "entity": other.order.entity.key,
                                     "token_id": hex_id(other.token_id), "status": other.state.status}
            lines[0] = (f"{WORDS[verdict.status].split(':')[0]}: this file is not {asked}; it is registered as "
                        f"{other.order.order_number} of {other.order.entity.key} "
                        f"({other.state.status}, token {hex_id(other.token_id)})")
    code = 0 if verdict.authentic else 1
    if fetch and verdict.token_id is not None:
        published = _check_published(registry, verdict.token_id, fetch_host or [])
        data["published"] = published.to_json()
        lines.append(published.human())
        code = published.exit_code if published.exit_code > 1 else max(code, published.exit_code)
    elif fetch:
        data["published"] = None
        lines.append("  published: nothing to fetch (no registered order matches this file)")
    emit(data, "\n".join(lines))
    if code:
        raise typer.Exit(code)


def _check_published(registry: Registry, token_id: int, hosts: list[str]) -> PublishedCheck:
    """`verify --fetch`: the published copy of `token_id` against its on-chain hash."""
    from ..fetch import FetchPolicy, check_published

    record = registry.read(token_id)
    policy = FetchPolicy.from_settings(workspace().settings, hosts)
    published = check_published(record.document_url, record.state.document_hash, policy)
    if published.exit_code > 1 and published.detail and state.json:  # else human() shows it
        err(f"error: {published.detail}")
    return published


def _verify_published_only(ref: str, hosts: list[str]) -> None:
    """`verify --fetch --token …` without a PDF in hand: is the published copy the original?"""
    from .. import service

    registry = workspace().registry()
    token_id = service.resolve(registry, ref)
    record = registry.read(token_id)
    published = _check_published(registry, token_id, hosts)
    data: dict[str, Any] = {"token_id": hex_id(token_id), "status": record.state.status,
                            "order_number": record.order.order_number, "entity": record.order.entity.key,
                            "expected_sha256": record.state.document_hash.hex(), "published": published.to_json()}
    emit(data, f"order {record.order.order_number} of {record.order.entity.name} (token {hex_id(token_id)}): "
               f"{record.state.status}\n{published.human()}")
    if published.exit_code:
        raise typer.Exit(published.exit_code)
