"""Is the PDF published at an order's `document_url` still the registered original?

For the built-in store (a URL ``<base URL>/d/<hashlink>`` of this very server) the file is read from the
store directly. Any other URL is fetched by the server with limits: http(s) only, public addresses only
(no loopback, private, link-local or reserved ranges, so the check cannot be aimed at the server's own
network), at most `max_bytes`, `timeout` seconds in all and 3 redirects, each re-checked. Answers are
kept for a while per token, and fetches are rate-limited per client and overall.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import httpx

from ..store import LocalStore
from .chainview import LRU

#: outcomes: ``original``, ``altered``, ``missing`` (404/410 or not in the store), ``unreachable``,
#: ``too_large``, ``refused`` (a URL the checker will not fetch), ``rate_limited``
OUTCOMES = ("original", "altered", "missing", "unreachable", "too_large", "refused", "rate_limited")


@dataclass(frozen=True, slots=True)
class DocumentCheck:
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


def _public_address(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


class DocumentChecker:
    """Checks published PDFs against their on-chain SHA-256 (see the module docstring)."""

    def __init__(self, store: LocalStore | None, base_url: str, *, max_bytes: int = 20 * 1024 * 1024,
                 timeout: float = 10.0, allow_private: bool = False, ttl: float = 600.0,
                 failure_ttl: float = 60.0, per_client: TokenBucket | None = None,
                 overall: TokenBucket | None = None, concurrency: int = 4,
                 transport: httpx.AsyncBaseTransport | None = None,
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
        self._transport = transport
        self._clock = clock
        self._cache: LRU[tuple[int, str], DocumentCheck] = LRU(10_000)

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
        prefix = self.base_url + "/d/"
        if not url.startswith(prefix):
            return None
        from ..hashing import parse_digest

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
            async with self._slots:
                try:
                    result = await asyncio.wait_for(self._fetch(url, expected), self.timeout)
                except TimeoutError:
                    result = DocumentCheck("unreachable", url, self._clock(), detail="timeout")
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

    async def _allowed(self, url: str) -> str | None:
        """None when `url` may be fetched, else why not."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return "only http(s) URLs are checked"
        if parts.username or parts.password:
            return "URLs with credentials are not fetched"
        if self.allow_private:
            return None
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                parts.hostname, parts.port or (443 if parts.scheme == "https" else 80), type=socket.SOCK_STREAM)
        except OSError:
            return "host not found"
        addresses = {str(info[4][0]) for info in infos}
        if not addresses or not all(_public_address(address) for address in addresses):
            return "the host is not a public internet address"
        return None

    async def _fetch(self, url: str, expected: bytes) -> DocumentCheck:
        current = url
        async with httpx.AsyncClient(follow_redirects=False, timeout=self.timeout, transport=self._transport,
                                     headers={"User-Agent": "peru-compras document check",
                                              "Accept": "application/pdf"}) as http:
            for _ in range(4):
                why = await self._allowed(current)
                if why is not None:
                    return DocumentCheck("refused", url, self._clock(), detail=why)
                try:
                    async with http.stream("GET", current) as response:
                        if response.is_redirect and "location" in response.headers:
                            current = urljoin(current, response.headers["location"])
                            continue
                        if response.status_code in (404, 410):
                            return DocumentCheck("missing", url, self._clock(),
                                                 detail=f"HTTP {response.status_code}")
                        if response.status_code != 200:
                            return DocumentCheck("unreachable", url, self._clock(),
                                                 detail=f"HTTP {response.status_code}")
                        length = response.headers.get("content-length", "")
                        if length.isdigit() and int(length) > self.max_bytes:
                            return DocumentCheck("too_large", url, self._clock(), size=int(length))
                        digest = hashlib.sha256()
                        size = 0
                        async for chunk in response.aiter_bytes():
                            size += len(chunk)
                            if size > self.max_bytes:
                                return DocumentCheck("too_large", url, self._clock(), size=size)
                            digest.update(chunk)
                except httpx.HTTPError as exc:
                    return DocumentCheck("unreachable", url, self._clock(), detail=type(exc).__name__)
                value = digest.digest()
                return DocumentCheck("original" if value == expected else "altered", url, self._clock(),
                                     value.hex(), size)
        return DocumentCheck("unreachable", url, self._clock(), detail="too many redirects")

