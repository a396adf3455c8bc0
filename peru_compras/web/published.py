"""Is the PDF published at an order's `document_url` still the registered original?

For the built-in store (a URL ``<base URL>/d/<hashlink>`` of this very server) the file is read from the
store directly. Any other URL is downloaded by :func:`peru_compras.fetch.check_published` — the same rules
and code as ``verify --fetch`` — under :meth:`FetchPolicy.for_page <peru_compras.fetch.FetchPolicy.for_page>`:
any http(s) host, but only public addresses (no loopback, private, link-local or reserved ranges, so the
check cannot be aimed at the server's own network), each host resolved once and connected to at the address
that was checked, at most `max_bytes`, `timeout` seconds in all and 3 redirects, each re-checked. Downloads
run in a small thread pool of their own, so a slow server cannot hold up the page's other work. Answers are
kept for a while per token, and fetches are rate-limited per client and overall.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial

import httpx

from ..fetch import FetchPolicy, check_published
from ..hashing import parse_digest
from ..store import LocalStore
from ..urls import DOCUMENT_PATH
from .chainview import LRU

#: outcomes: ``original``, ``altered``, ``missing`` (404/410 or not in the store), ``unreachable``,
#: ``too_large``, ``refused`` (a URL the checker will not fetch), ``rate_limited``
OUTCOMES = ("original", "altered", "missing", "unreachable", "too_large", "refused", "rate_limited")


@dataclass(frozen=True, slots=True)
class DocumentCheck:
    """Whether the PDF at document_url is still the registered original. outcome: original, altered,
    missing, unreachable, too_large, refused or rate_limited; source: url (downloaded) or store (read from
    the built-in store). The answer of GET /api/orders/{token_id}/document, and its OpenAPI schema."""

    outcome: str
    url: str
    checked_at: float
    sha256: str | None = None
    size: int | None = None
    detail: str | None = None
    source: str = "url"

    def to_json(self) -> dict[str, object]:
        return {"outcome": self.outcome, "url": self.url, "checked_at": int(self.checked_at),
                "sha256": self.sha256, "size": self.size, "detail": self.detail, "source": self.source}


class TokenBucket:
    """`rate` tokens per second up to `burst`, per key (LRU-bounded)."""

    def __init__(self, rate: float, burst: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._buckets: LRU[str, tuple[float, float]] = LRU(10_000)

    def take(self, key: str) -> bool:
        now = self._clock()
        tokens, at = self._buckets.get(key) or (self.burst, now)
        tokens = min(self.burst, tokens + (now - at) * self.rate)
        if tokens < 1:
            self._buckets.put(key, (tokens, now))
            return False
        self._buckets.put(key, (tokens - 1, now))
        return True


class DocumentChecker:
    """Checks published PDFs against their on-chain SHA-256 (see the module docstring)."""

    def __init__(self, store: LocalStore | None, base_url: str, *, max_bytes: int = 20 * 1024 * 1024,
                 timeout: float = 10.0, allow_private: bool = False, ttl: float = 600.0,
                 failure_ttl: float = 60.0, per_client: TokenBucket | None = None,
                 overall: TokenBucket | None = None, concurrency: int = 4,
                 transport: httpx.BaseTransport | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.base_url = base_url.rstrip("/")
        self.max_bytes = max_bytes
        self.timeout = timeout
        self.allow_private = allow_private
        self.ttl = ttl
        self.failure_ttl = failure_ttl
        self.per_client = per_client or TokenBucket(rate=1 / 10, burst=6)
        self.overall = overall or TokenBucket(rate=2.0, burst=30)
        self._slots = asyncio.Semaphore(concurrency)
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="document-check")
        self._transport = transport  # tests: replaces the network (sees requests for the pinned address)
        self._clock = clock
        self._cache: LRU[tuple[int, str], DocumentCheck] = LRU(10_000)

    @property
    def policy(self) -> FetchPolicy:
        """The download rules, shared with ``verify --fetch``: any host, public addresses, these limits."""
        return FetchPolicy.for_page(self.base_url, max_bytes=self.max_bytes, timeout=self.timeout,
                                    allow_private=self.allow_private)

    def cached(self, token_id: int, url: str) -> DocumentCheck | None:
        found = self._cache.get((token_id, url))
        if found is None:
            return None
        ttl = self.ttl if found.outcome in ("original", "altered") else self.failure_ttl
        return found if self._clock() - found.checked_at < ttl else None

    def local_path_digest(self, url: str) -> bytes | None:
        """When `url` is this server's own ``/d/<hashlink>``, the digest it names."""
        if self.store is None:
            return None
        prefix = self.base_url + DOCUMENT_PATH
        if not url.startswith(prefix):
            return None

        try:
            return parse_digest(url[len(prefix):])
        except ValueError:
            return None

    async def check(self, token_id: int, url: str, expected: bytes, client: str) -> DocumentCheck:
        """The check's outcome, from the cache when fresh; rate-limited for fetches of other hosts."""
        found = self.cached(token_id, url)
        if found is not None:
            return found
        named = self.local_path_digest(url)
        if named is not None:
            result = await asyncio.to_thread(self._check_store, url, named, expected)
        else:
            if not (self.per_client.take(client) and self.overall.take("*")):
                return DocumentCheck("rate_limited", url, self._clock())
            result = await self._fetch(url, expected)
        self._cache.put((token_id, url), result)
        return result

    def _check_store(self, url: str, named: bytes, expected: bytes) -> DocumentCheck:
        assert self.store is not None
        data = self.store.get(named)
        now = self._clock()
        if data is None:
            return DocumentCheck("missing", url, now, source="store")
        digest = hashlib.sha256(data).digest()
        outcome = "original" if digest == expected else "altered"
        return DocumentCheck(outcome, url, now, digest.hex(), len(data), source="store")

    async def _fetch(self, url: str, expected: bytes) -> DocumentCheck:
        """Download `url` in the pool under `self.policy`; the answer waits at most `timeout` seconds.

        A slot is held until the download's thread is done (it stops by itself within its own limits even
        when the answer has given up on it), so at most `concurrency` downloads ever run at once."""
        download = partial(check_published, url, expected, self.policy, transport=self._transport)
        await self._slots.acquire()
        try:
            work = asyncio.get_running_loop().run_in_executor(self._pool, download)
        except BaseException:
            self._slots.release()
            raise
        work.add_done_callback(lambda _: self._slots.release())
        try:
            published = await asyncio.wait_for(asyncio.shield(work), self.timeout)
        except TimeoutError:
            return DocumentCheck("unreachable", url, self._clock(), detail="timeout")
        digest = published.sha256.hex() if published.sha256 else None
        return DocumentCheck(published.outcome, url, self._clock(), digest, published.size,
                             _public_detail(published.outcome, published.detail))


_ADDRESS = re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}\b|\[[0-9a-fA-F:.]+\]|\b[0-9a-fA-F]{1,4}(?::[0-9a-fA-F]{0,4}){2,7}\b")


def _public_detail(outcome: str, detail: str | None) -> str | None:
    """What the page tells anyone about a download: no addresses a host name resolved to (the page must not
    become a way to look up internal names), no operator hints."""
    if detail is None:
        return None
    if outcome == "refused":
        return "not checked: only http(s) URLs on public internet addresses are downloaded"
    return _ADDRESS.sub("<address>", detail.split(" — ", 1)[0])[:200]
