"""Is every published document still the registered original? Download each mirrored order's document
(its ``document_url``, or the built-in store's URL) under ``verify --fetch``'s rules
(:mod:`peru_compras.fetch`: allowed hosts, no private addresses, size and time caps, redirects checked),
hash it and keep the verdict in the mirror's ``audit`` table:

- ``original``: the SHA-256 is the one on chain;
- ``altered``: another file (``detail`` says when it is not a PDF at all, e.g. an HTML page);
- ``missing``: the server answers 404 or 410;
- ``unreachable``: no answer, too slow, a stalled body, another HTTP error;
- ``refused``: the rules forbid the download (host not allowed, a private address, over the size cap, too
  many redirects), nothing or only part of it read.

Each row has the time it was checked. Results are written in chunks (500 verdicts, or a second's worth),
each in one transaction, so a run that is stopped or killed keeps what it had written; the next run checks
what has no verdict yet, or one older than `recheck_after` seconds (new orders mirrored since are among them).

Politeness: at most `per_host` downloads at a time and `rate` starts per second to any one host (``host:port``),
`workers` in all. Connections are kept alive per pinned address and host name, never shared between names.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from .errors import DocumentMissing, FetchFailed, FetchRefused, FetchTooLarge, InvalidInput
from .fetch import FetchPolicy, fetch_document
from .hashing import sha256
from .mirror_schema import Database, open_database

STATUSES = ("original", "altered", "missing", "unreachable", "refused")
_CHUNK = 500  # verdicts per transaction, written at least every _SAVE_EVERY seconds
_SAVE_EVERY = 1.0

Progress = Callable[[int, int, int], None]  # (checked, to check, not original so far)


@dataclass(frozen=True, slots=True)
class AuditSettings:
    """How hard the audit may pull: `workers` downloads in all, `per_host` at a time per host, `rate` starts
    per second per host (0: no limit); verdicts older than `recheck_after` seconds are checked again."""

    workers: int = 16
    per_host: int = 4
    rate: float = 20.0
    recheck_after: float = 7 * 86_400.0

    def __post_init__(self) -> None:
        for name, value, low, high in (("--workers", self.workers, 1, 256), ("--per-host", self.per_host, 1, 64)):
            if not low <= value <= high:
                raise InvalidInput(f"{name} {value} is out of range", hint=f"give {low} to {high}")
        if not 0 <= self.rate <= 10_000:
            raise InvalidInput(f"--rate {self.rate:g} is out of range", hint="give 0 (no limit) to 10000 per second")
        if not 0 <= self.recheck_after < 10**10:
            raise InvalidInput(f"--recheck-after {self.recheck_after:g} is out of range", hint="give seconds ≥ 0")


@dataclass(frozen=True, slots=True)
class Verdict:
    token_id: str
    status: str
    checked_at: str
    url: str
    final_url: str | None = None
    sha256: str | None = None
    size: int | None = None
    detail: str | None = None

    def row(self) -> dict[str, Any]:
        return {"token_id": self.token_id, "status": self.status, "checked_at": self.checked_at, "url": self.url,
                "final_url": self.final_url, "sha256": self.sha256, "size": self.size, "detail": self.detail}


@dataclass(frozen=True, slots=True)
class AuditSummary:
    """Totals over every mirrored order with a document (this run's and earlier verdicts)."""

    checked: int  # by this run
    totals: dict[str, int]
    unchecked: int

    @property
    def all_original(self) -> bool:
        return self.unchecked == 0 and all(self.totals.get(status, 0) == 0 for status in STATUSES[1:])

    def to_json(self) -> dict[str, Any]:
        return {"checked": self.checked, "orders": sum(self.totals.values()) + self.unchecked,
                **{status: self.totals.get(status, 0) for status in STATUSES}, "unchecked": self.unchecked,
                "all_original": self.all_original}


# -- downloading ---------------------------------------------------------------------------------------


class PooledTransport(httpx.BaseTransport):
    """An httpx transport keeping connections alive per (scheme, pinned address, port, Host name), so a
    connection made and checked for one name never carries a request for another. `close` is left to
    :meth:`close_all` (fetch_document closes its client after every download)."""

    def __init__(self, per_host: int) -> None:
        self._context = httpx.create_ssl_context(trust_env=False)  # as fetch.py's: certifi, names checked
        self._limits = httpx.Limits(max_connections=per_host, max_keepalive_connections=per_host)
        self._pools: dict[tuple[str, str, int, str], httpx.HTTPTransport] = {}
        self._lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        key = (request.url.scheme, request.url.host, request.url.port or 0, request.headers.get("host", ""))
        with self._lock:
            pool = self._pools.get(key)
            if pool is None:
                pool = self._pools[key] = httpx.HTTPTransport(verify=self._context, trust_env=False,
                                                              limits=self._limits)
        return pool.handle_request(request)

    def close(self) -> None:
        pass

    def close_all(self) -> None:
        with self._lock:
            for pool in self._pools.values():
                pool.close()
            self._pools.clear()


class _Host:
    """One host's share: a slot semaphore and the time the next download may start."""

    def __init__(self, per_host: int, rate: float) -> None:
        self.slots = threading.BoundedSemaphore(per_host)
        self.interval = 1 / rate if rate else 0.0
        self.next = 0.0
        self.lock = threading.Lock()

    def turn(self) -> None:
        if not self.interval:
            return
        with self.lock:
            now = time.monotonic()
            start = max(now, self.next)
            self.next = start + self.interval
        if start > now:
            time.sleep(start - now)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def check_document(token_id: str, url: str, expected: bytes, policy: FetchPolicy, *,
                   transport: httpx.BaseTransport | None = None) -> Verdict:
    """Download `url` under `policy` and say how it compares with `expected` (never raises for the
    server's doing: every outcome is a verdict)."""
    try:
        fetched = fetch_document(url, policy, transport=transport)
    except DocumentMissing as exc:
        return Verdict(token_id, "missing", _now(), url, detail=exc.message)
    except FetchTooLarge as exc:
        return Verdict(token_id, "refused", _now(), url, size=exc.size, detail=exc.message)
    except FetchRefused as exc:
        return Verdict(token_id, "refused", _now(), url, detail=exc.message)
    except FetchFailed as exc:
        return Verdict(token_id, "unreachable", _now(), url, detail=exc.message)
    digest = sha256(fetched.data)
    if digest == expected:
        return Verdict(token_id, "original", _now(), url, fetched.url, digest.hex(), len(fetched.data))
    head = fetched.data[:512].lstrip().lower()
    if fetched.data.startswith(b"%PDF-"):
        detail = "a PDF, but not the registered one: its SHA-256 differs from the one on chain"
    elif head.startswith((b"<!doctype html", b"<html")) or b"<html" in head:
        detail = "an HTML page, not the registered PDF"
    else:
        detail = "not a PDF (it does not start with %PDF-), not the registered document"
    return Verdict(token_id, "altered", _now(), url, fetched.url, digest.hex(), len(fetched.data), detail)


# -- the run -------------------------------------------------------------------------------------------


def ensure_table(db: Database) -> None:
    if "audit" not in db.table_names():
        with db.atomic():
            db.table("audit").create({"token_id": str, "status": str, "checked_at": str, "url": str,
                                      "final_url": str, "sha256": str, "size": int, "detail": str},
                                     pk="token_id", foreign_keys=[("token_id", "orders", "token_id")])
            db.table("audit").create_index(["status"])
            db.table("audit").create_index(["checked_at"])


def _due(db: Database, before: str) -> Iterator[tuple[str, str, bytes]]:
    sql = ("SELECT o.token_id, o.published_url, o.document_sha256 FROM orders o LEFT JOIN audit a "
           "ON a.token_id = o.token_id WHERE o.published_url IS NOT NULL AND o.document_sha256 IS NOT NULL "
           "AND (a.checked_at IS NULL OR a.checked_at <= ?) ORDER BY o.block_number, o.log_index")  # to the second
    for token, url, digest in db.execute(sql, [before]).fetchall():
        yield str(token), str(url), bytes.fromhex(str(digest))


def open_mirror(path: Path) -> Database:
    if not path.is_file():
        raise InvalidInput(f"no mirror at {str(path)!r}", hint="make one with `peru-compras mirror --out FILE`")
    db = open_database(path, hint="give the file `peru-compras mirror` wrote with --mirror")
    if "orders" not in db.table_names() or "mirror" not in db.table_names():
        db.close()
        raise InvalidInput(f"{str(path)!r} is not a peru-compras mirror", hint="make one with `peru-compras mirror`")
    return db


def summarize(db: Database) -> AuditSummary:
    totals = {str(status): int(count) for status, count in db.execute(
        "SELECT a.status, count(*) FROM audit a JOIN orders o ON o.token_id = a.token_id GROUP BY a.status")}
    (unchecked,) = db.execute("SELECT count(*) FROM orders o LEFT JOIN audit a ON a.token_id = o.token_id "
                              "WHERE a.token_id IS NULL AND o.published_url IS NOT NULL").fetchone()
    return AuditSummary(0, totals, int(unchecked))


def audit(path: Path, policy: FetchPolicy, *, settings: AuditSettings | None = None,
          progress: Progress | None = None, transport: httpx.BaseTransport | None = None) -> AuditSummary:
    """Check every due document of the mirror at `path` (see the module docstring)."""
    settings = settings or AuditSettings()
    db = open_mirror(path)
    try:
        ensure_table(db)
        before = (datetime.now(UTC) - timedelta(seconds=settings.recheck_after)).strftime("%Y-%m-%dT%H:%M:%SZ")
        due = list(_due(db, before))
        pooled = None if transport is not None else PooledTransport(settings.per_host)
        hosts: dict[str, _Host] = {}

        def one(token: str, url: str, expected: bytes) -> Verdict:
            try:
                parts = urlsplit(url)
                name = f"{(parts.hostname or '').lower()}:{parts.port or ''}"
            except ValueError:
                name = ""
            host = hosts.setdefault(name, _Host(settings.per_host, settings.rate))
            with host.slots:
                host.turn()
                return check_document(token, url, expected, policy, transport=transport or pooled)

        done = bad = 0
        pending: list[Verdict] = []
        saved = time.monotonic()
        with ThreadPoolExecutor(settings.workers, thread_name_prefix="audit") as pool:
            queue = iter(due)
            running: set[Future[Verdict]] = set()
            while True:
                while len(running) < settings.workers * 4:
                    job = next(queue, None)
                    if job is None:
                        break
                    running.add(pool.submit(one, *job))
                if not running:
                    break
                finished, running = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    verdict = future.result()
                    pending.append(verdict)
                    done += 1
                    bad += verdict.status != "original"
                if len(pending) >= _CHUNK or time.monotonic() - saved > _SAVE_EVERY:
                    _save(db, pending)
                    saved = time.monotonic()
                if progress:
                    progress(done, len(due), bad)
        _save(db, pending)
        if pooled is not None:
            pooled.close_all()
        summary = summarize(db)
    finally:
        db.close()
    return AuditSummary(done, summary.totals, summary.unchecked)


def _save(db: Database, verdicts: list[Verdict]) -> None:
    if verdicts:
        with db.atomic():
            db.table("audit").upsert_all([verdict.row() for verdict in verdicts], pk="token_id")
        verdicts.clear()
