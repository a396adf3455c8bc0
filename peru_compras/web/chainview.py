"""Cached chain reads for the page: a record never changes once minted, only its status does.

- The immutable part of an order (the record, its transaction, block, registrar, document URL and the
  block's timestamp) is read once and kept (LRU-bounded) by token id.
- The status is kept until the chain says it changed: at most every `sync_interval` seconds one
  ``eth_blockNumber`` and, when blocks were added, one ``eth_getLogs`` for ``OrderAnnulled`` /
  ``OrderSuperseded`` / ``DocumentBaseURIChanged`` over the new blocks evict exactly the tokens (or, for
  the base URI, the records) that changed. The cost of a page view therefore does not grow with the
  number of registered orders or the number of orders viewed.
- Concurrent misses for the same key share one read ("single flight"); reads run in a worker thread so
  the event loop never waits on the node, and only the event loop changes the caches.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, replace
from typing import Any, Generic, TypeVar

from starlette.concurrency import run_in_threadpool

from ..chain.client import ORDER_ANNULLED, ORDER_SUPERSEDED, OnChainOrder, OrderState, Registry
from ..errors import OrderNotRegistered, UnreadableRecord
from ..hashing import keccak256
from ..order import Order

DOCUMENT_BASE_URI_CHANGED = "0x" + keccak256(b"DocumentBaseURIChanged(string)").hex()
#: above this many new blocks at once, drop every cached status instead of reading the logs
MAX_LOG_RANGE = 5_000

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class LRU(Generic[K, V]):
    """A bounded mapping that forgets the least recently used entries."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._data: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        value = self._data.get(key)
        if value is not None:
            self._data.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> None:
        self._data[key] = value
        self._data.move_to_end(key)
        if len(self._data) > self.size:
            self._data.popitem(last=False)

    def pop(self, key: K) -> None:
        self._data.pop(key, None)

    def clear(self) -> None:
        self._data.clear()

    def __len__(self) -> int:
        return len(self._data)


@dataclass(frozen=True, slots=True)
class View:
    """An order as the page shows it: the chain's record (its `state` is the current status) and the time of
    the block that registered it (None when the node did not say)."""

    record: OnChainOrder
    registered_at: int | None

    @property
    def token_id(self) -> int:
        return self.record.state.token_id

    @property
    def order(self) -> Order:
        return self.record.order

    @property
    def state(self) -> OrderState:
        return self.record.state

    @property
    def status_key(self) -> tuple[str, int, int | None, int | None]:
        """What changes when the status does (pages and JSON bodies are cached by it)."""
        state = self.record.state
        return state.status, state.status_changed_at, state.replaced_by, state.replaces


class ChainView:
    """The page's window on a registry (see the module docstring).

    `registry` is a callable returning the :class:`Registry` (resolved lazily: the node may be down when
    the server starts).
    """

    def __init__(self, registry: Callable[[], Registry], *, sync_interval: float = 1.0,
                 max_records: int = 100_000, clock: Callable[[], float] = time.monotonic) -> None:
        self._registry_factory = registry
        self._registry: Registry | None = None
        self.sync_interval = sync_interval
        self._clock = clock
        self._facts: LRU[int, View] = LRU(max_records)  # as first read: all but the state stays true
        self._current: LRU[int, View] = LRU(max_records)  # with the current state
        self._missing: LRU[int, int] = LRU(10_000)  # token id -> block at which it was not registered
        self._broken: LRU[int, UnreadableRecord] = LRU(10_000)  # records that do not decode (they never will)
        self._by_hash: LRU[bytes, tuple[int, ...]] = LRU(10_000)
        self._hash_missing: LRU[bytes, int] = LRU(10_000)
        self._inflight: dict[Hashable, asyncio.Future[Any]] = {}
        self.block = -1
        self._synced_at = float("-inf")
        self.chain_id: int | None = None
        #: bumped whenever cached records may have changed wholesale (document base URI changed)
        self.epoch = 0

    # -- plumbing -------------------------------------------------------------------------------------

    @property
    def registry(self) -> Registry:
        if self._registry is None:
            self._registry = self._registry_factory()
        return self._registry

    async def _once(self, key: Hashable, make: Callable[[], Awaitable[V]]) -> V:
        """Run `make()`; concurrent callers with the same key share the one run."""
        future = self._inflight.get(key)
        if future is None:
            task: asyncio.Future[V] = asyncio.ensure_future(make())
            self._inflight[key] = task
            task.add_done_callback(lambda _: self._inflight.pop(key, None))
            future = task
        result: V = await asyncio.shield(future)
        return result

    async def run(self, key: Hashable, work: Callable[[], V]) -> V:
        """`work()` in a worker thread, single-flight by `key` (other slow reads, e.g. stored files)."""
        return await self._once(key, lambda: run_in_threadpool(work))

    # Work that waits on the node runs in a worker thread and only reads; the caches are changed on the
    # event loop, so no two threads ever touch them at once.

    # -- the block clock ------------------------------------------------------------------------------

    async def sync(self, *, force: bool = False) -> int:
        """Bring the status cache up to the latest block (at most once per `sync_interval`)."""
        if force or self._clock() - self._synced_at >= self.sync_interval:
            await self._once("sync", self._sync)
        return self.block

    async def _sync(self) -> None:
        chain_id, latest, logs = await run_in_threadpool(self._poll, self.block)
        self.chain_id = chain_id
        if logs is None:
            self._current.clear()
        for log in logs or []:
            topics = log.get("topics") or []
            if topics and topics[0] == DOCUMENT_BASE_URI_CHANGED:
                self._facts.clear()
                self._current.clear()
                self.epoch += 1
                continue
            for topic in topics[1:3]:
                self._current.pop(int(topic, 16))
        self.block = max(self.block, latest)
        self._synced_at = self._clock()

    def _poll(self, known: int) -> tuple[int, int, list[dict[str, Any]] | None]:
        """(chain id, latest block, status events since `known` — None: too many blocks, forget all)."""
        registry = self.registry
        chain_id = self.chain_id or int(registry.rpc.call("eth_chainId", retry=False), 16)
        latest = int(registry.rpc.call("eth_blockNumber", retry=False), 16)
        if known < 0 or latest - known > MAX_LOG_RANGE:
            return chain_id, latest, None
        if latest <= known:
            return chain_id, latest, []
        logs: list[dict[str, Any]] = registry.rpc.call("eth_getLogs", [{
            "address": registry.address,
            "fromBlock": hex(known + 1),
            "toBlock": hex(latest),
            "topics": [[ORDER_ANNULLED, ORDER_SUPERSEDED, DOCUMENT_BASE_URI_CHANGED]],
        }], retry=False)
        return chain_id, latest, registry.checked_logs(logs, 1)  # a node's garbage: its invalid answer (502)

    # -- orders ---------------------------------------------------------------------------------------

    async def order(self, token_id: int) -> View | None:
        """The order's record and current status, or None when no order is registered as `token_id`."""
        await self.sync()
        current = self._current.get(token_id)
        if current is not None:
            return current
        missing_at = self._missing.get(token_id)
        if missing_at is not None and missing_at >= self.block:
            return None
        broken = self._broken.get(token_id)
        if broken is not None:
            raise broken
        known = self._facts.get(token_id)
        if known is None:
            return await self._once(("read", token_id), lambda: self._load(token_id))
        return await self._once(("status", token_id), lambda: self._load_status(known))

    async def _load(self, token_id: int) -> View | None:
        block, epoch = self.block, self.epoch
        try:
            view = await run_in_threadpool(self._read, token_id)
        except UnreadableRecord as exc:
            self._broken.put(token_id, exc)
            raise
        if view is None:
            self._missing.put(token_id, block)
        elif epoch == self.epoch:
            self._facts.put(token_id, view)
            self._current.put(token_id, view)
            self._missing.pop(token_id)
        return view

    def _read(self, token_id: int) -> View | None:
        try:
            record = self.registry.read(token_id)
        except OrderNotRegistered:
            return None
        registered_at = None
        try:
            header = self.registry.rpc.call("eth_getBlockByNumber", [hex(record.block_number), False])
            registered_at = int(header["timestamp"], 16) if header else None
        except Exception:  # noqa: BLE001 — the timestamp is a nicety; the page works without it
            registered_at = None
        return View(record, registered_at)

    async def _load_status(self, known: View) -> View:
        state, reason = await run_in_threadpool(self._read_status, known.token_id)
        view = View(replace(known.record, state=state, annul_reason=reason), known.registered_at)
        self._current.put(known.token_id, view)
        return view

    def _read_status(self, token_id: int) -> tuple[OrderState, str | None]:
        state = self.registry.state(token_id)
        reason = self.registry.read(token_id).annul_reason if state.status == "annulled" else None
        return state, reason

    async def find_by_hash(self, digest: bytes) -> tuple[int, ...]:
        """Token ids registered with this document hash (positive answers kept; negative per block)."""
        await self.sync()
        found = self._by_hash.get(digest)
        if found:
            return found
        missing_at = self._hash_missing.get(digest)
        if missing_at is not None and missing_at >= self.block:
            return ()

        async def load() -> tuple[int, ...]:
            block = self.block
            ids = tuple(await run_in_threadpool(self.registry.find_by_hash, digest))
            if ids:
                self._by_hash.put(digest, ids)
            else:
                self._hash_missing.put(digest, block)
            return ids

        return await self._once(("hash", digest), load)

    def stats(self) -> dict[str, int]:
        return {"records": len(self._facts), "statuses": len(self._current), "block": self.block}
