"""``register-batch --dry-run`` and the run's summary line."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import InvalidInput
from ..rows import Row
from ..steps import ITEM_ERRORS
from ..urls import token_hex
from .workers import Emit, error_text

if TYPE_CHECKING:
    from ..pdf import Limits


@dataclass
class Summary:
    """The last line. `skipped` (OCDS releases with nothing to register) appears for OCDS manifests;
    `would_register` and `dry_run` for ``--dry-run``."""

    registered: int = 0
    already_registered: int = 0
    failed: int = 0
    skipped: int = 0
    would_register: int = 0
    ocds: bool = False
    dry_run: bool = False

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"registered": self.registered, "already_registered": self.already_registered,
                               "failed": self.failed}
        if self.ocds or self.skipped:
            out["skipped"] = self.skipped
        if self.dry_run:
            out.update(would_register=self.would_register, dry_run=True)
        return {"summary": out}


def preview(rows: Iterator[Row], *, base_url: str, emit: Emit, progress: Callable[[int], None] | None = None,
            limits: Limits | None = None) -> Summary:
    """``--dry-run``: each row's mapped record (or its refusal, or why it is skipped) as one line, checked
    as ``register-batch`` would check it (record rules, verify URL length, the PDF within `limits` and
    registrable: :func:`peru_compras.service.prepare` without the stamp) but nothing drawn, stamped, stored,
    journaled or sent."""
    from .. import service
    from ..order import parse_order
    from ..pdf import read_checked
    from ..urls import verify_url as make_verify_url

    summary = Summary(dry_run=True)
    seen: dict[str, int] = {}
    for row in rows:
        source = row.source or {}
        summary.ocds = summary.ocds or row.source is not None
        if progress is not None:
            progress(1)
        if row.skipped:
            summary.skipped += 1
            emit({"row": row.number, "status": "skipped", "reason": row.error, **source})
            continue
        try:
            problem = row.problem()
            if problem is not None:
                raise InvalidInput(problem)
            order = parse_order(row.record)  # each line names its row already
            verify_url = make_verify_url(base_url, order)
            if row.pdf is not None:
                with read_checked(row.pdf, limits=limits) as checked:
                    service.prepare(order, checked, base_url=base_url, stamp=False, limits=limits, name=str(row.pdf))
            if order.key in seen:
                raise InvalidInput(f"order {order.order_number!r} appears again (row {seen[order.key]})")
            seen[order.key] = row.number
        except ITEM_ERRORS as exc:
            summary.failed += 1
            emit({"row": row.number, "order_number": row.order_number_hint, "error": error_text(exc), **source})
            continue
        summary.would_register += 1
        emit({"row": row.number, "status": "would_register", "order_number": order.order_number,
              "entity_ruc": order.entity.key, "token_id": token_hex(order.token_id), "verify_url": verify_url,
              "pdf": str(row.pdf) if row.pdf is not None else None, "render": row.pdf is None,
              "record": order.to_json(), **source})
    return summary
