"""Many items through the same steps, each step over all of them before the next one
(:func:`~peru_compras.service.prepare_many`, :func:`~peru_compras.pdf.read_checked_many`): a step's code
and data then stay in the processor's caches. What refuses one item becomes that item's `outcome` and the
others go on; anything else stops the steps.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Protocol, TypeVar

from .errors import PeruComprasError

#: what refuses one item of many while the others go on: our refusals, and what a record or document no rule
#: foresaw raises
ITEM_ERRORS = (PeruComprasError, ValueError, TypeError, RecursionError, MemoryError)


class Item(Protocol):
    """An item on its way: None until a step refuses it."""

    outcome: Exception | None


T = TypeVar("T", bound=Item)


def run_steps(items: Sequence[T], steps: Iterable[Callable[[T], None]]) -> None:
    """Each of `steps` over every item not refused yet, then the next step."""
    for step in steps:
        for item in items:
            if item.outcome is None:
                try:
                    step(item)
                except ITEM_ERRORS as exc:
                    item.outcome = exc
