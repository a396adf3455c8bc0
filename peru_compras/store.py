"""The document store: where registered PDFs are kept and published.

The built-in store is a content-addressed folder (``./.peru-compras/documents/`` by default), published at
``<base URL>/d/<hashlink>``. It keeps a document in one of two ways:

* a loose file ``<first two hex digits>/<sha256 hex>.pdf`` (``register``, one order at a time). Writes are
  atomic (a temporary file, then a rename), and a file already there is never replaced by other bytes.
* a record in a pack, ``packs/<name>.pack`` (``register-batch``): creating one file per order costs more
  than everything else a batch does per order, so a batch appends its documents to a few pack files and
  lists them in ``index.sqlite`` (SHA-256 → pack, offset, length). Each record carries its own SHA-256 and
  length, so a pack can be checked or re-indexed on its own (:meth:`LocalStore.reindex`). A document
  becomes visible only once :meth:`LocalStore.commit` has flushed its pack to disk and indexed it; bytes
  appended by a run that crashed before that are never indexed and never served.

Another backend (S3-compatible storage, say) implements :class:`DocumentStore`.
"""

from __future__ import annotations

import fcntl
import os
import secrets
import sqlite3
import struct
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from .errors import PeruComprasError
from .hashing import hashlink, sha256


class DocumentStore(Protocol):
    """Where registered documents are kept."""

    def put(self, data: bytes) -> bytes:
        """Keep `data` durably; returns its SHA-256. Storing the same bytes twice is harmless."""
        ...

    def get(self, digest: bytes) -> bytes | None:
        """The document with this SHA-256, or None."""
        ...

    def url(self, digest: bytes) -> str:
        """Where the document with this SHA-256 is published."""
        ...


_MAGIC = b"PCD1"
_HEADER = struct.Struct(">4s32sQ")  # magic, SHA-256, length; the document's bytes follow
PACK_LIMIT = 1 << 30  # a pack is closed once it holds this many bytes; the next record starts a new one

_INDEX_SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    sha256 BLOB PRIMARY KEY, pack TEXT NOT NULL, offset INTEGER NOT NULL, length INTEGER NOT NULL
) WITHOUT ROWID;
"""


@dataclass(frozen=True, slots=True)
class Packed:
    """Where a pack writer put a document; `pack` is None when the store already had it."""

    digest: bytes
    pack: str | None = None
    offset: int = 0
    length: int = 0


class LocalStore:
    """A content-addressed folder, published under ``<base_url>/d/<hashlink>``."""

    def __init__(self, root: Path, base_url: str) -> None:
        self.root = root
        self.base_url = base_url.rstrip("/")
        self._local = threading.local()
        self._root = str(root)  # strings, not Paths, on the per-order paths (has() runs once per batch row)
        self._index_file = os.path.join(self._root, "index.sqlite")
        self._named_packs: set[str] = set()  # packs whose folder entry this store has flushed

    # -- loose files ---------------------------------------------------------------------------------

    def path(self, digest: bytes) -> Path:
        return Path(self._loose(digest))

    def _loose(self, digest: bytes) -> str:
        hexa = digest.hex()
        return os.path.join(self._root, hexa[:2], hexa + ".pdf")

    def put(self, data: bytes) -> bytes:
        """Keep `data` as a loose file, atomically and durably (:func:`write_atomic`)."""
        digest = sha256(data)
        target = self.path(digest)
        if target.exists():
            if sha256(target.read_bytes()) == digest:
                return digest
            raise PeruComprasError(f"the stored file {target} does not match its name",
                                   hint="the store was tampered with: restore it from a backup")
        if self._lookup(digest) is not None:  # a batch packed it already
            return digest
        write_atomic(target, data, durable=True)  # (the folder is made there)
        return digest

    # -- reading -------------------------------------------------------------------------------------

    def get(self, digest: bytes) -> bytes | None:
        try:
            return self.path(digest).read_bytes()
        except FileNotFoundError:
            pass
        where = self._lookup(digest)
        if where is None:
            return None
        pack, offset, length = where
        try:
            with open(self.root / "packs" / pack, "rb") as handle:
                data = os.pread(handle.fileno(), length, offset)
        except FileNotFoundError:
            return None
        return data if len(data) == length else None

    def has(self, digest: bytes) -> bool:
        """Whether the store keeps this document (as a loose file or in a pack), without reading it."""
        return os.path.exists(self._loose(digest)) or self._lookup(digest) is not None

    def url(self, digest: bytes) -> str:
        return f"{self.base_url}/d/{hashlink(digest)}"

    # -- packs ---------------------------------------------------------------------------------------

    def pack_writer(self) -> PackWriter:
        """A writer appending documents to packs of its own (one per process: packs have one writer)."""
        return PackWriter(self)

    def commit(self, packed: Iterable[Packed], *, synced: bool = False) -> None:
        """Flush the packs these documents were appended to and index them, in that order: once this
        returns, each of them is on disk and served, whatever crashes next. `synced`: their writers flushed
        them already (:meth:`PackWriter.sync`): only the index is written."""
        rows = [(p.digest, p.pack, p.offset, p.length) for p in packed if p.pack is not None]
        if not rows:
            return
        folder = self.root / "packs"
        packs = {str(row[1]) for row in rows}
        if not synced:
            for pack in sorted(packs):
                _fsync(folder / pack)
            if not packs <= self._named_packs:  # a new pack: its name goes to disk too
                _fsync(folder)
                self._named_packs |= packs
        db = self._index(write=True)
        with db:
            db.execute("BEGIN IMMEDIATE")
            db.executemany("INSERT OR IGNORE INTO documents (sha256, pack, offset, length) VALUES (?,?,?,?)", rows)

    def reindex(self) -> int:
        """Rebuild ``index.sqlite`` from the packs (each record names its own SHA-256, checked here); a torn
        record at a pack's end is ignored. Returns the number of documents indexed."""
        found = [Packed(digest, pack.name, offset, length) for pack in sorted((self.root / "packs").glob("*.pack"))
                 for digest, offset, length in _records(pack)]
        self.commit(found)
        return len(found)

    def _index(self, *, write: bool = False) -> sqlite3.Connection:
        """This thread's connection to ``index.sqlite``. Only :meth:`commit` writes (and creates the index);
        lookups (batch workers, the page) read through a read-only connection, so a reader can never hold a
        lock the writer waits for while itself waiting to write (SQLite answers that deadlock "database is
        locked" at once). WAL: readers never wait for the writer."""
        slot = "writer" if write else "reader"
        db: sqlite3.Connection | None = getattr(self._local, slot, None)
        if db is not None and self._local.pid == os.getpid():  # a forked worker opens its own
            return db
        if write:
            self.root.mkdir(parents=True, exist_ok=True)
            # Two writers setting up a new index at once could deadlock (the same "locked" at once): one at
            # a time, under a file lock. Afterwards each commit is one BEGIN IMMEDIATE transaction.
            with open(os.path.join(self._root, "index.lock"), "a") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                db = sqlite3.connect(self._index_file, isolation_level=None, timeout=30)
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=FULL")
                db.executescript(_INDEX_SCHEMA)
        else:
            uri = Path(self._index_file).resolve().as_uri() + "?mode=ro"
            db = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=30)
        if getattr(self._local, "pid", None) != os.getpid():
            self._local.writer = self._local.reader = None
            self._local.pid = os.getpid()
        setattr(self._local, slot, db)
        return db

    def _lookup(self, digest: bytes) -> tuple[str, int, int] | None:
        if getattr(self._local, "reader", None) is None and not os.path.exists(self._index_file):
            return None
        try:
            row = self._index().execute("SELECT pack, offset, length FROM documents WHERE sha256=?",
                                        (digest,)).fetchone()
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):  # the first commit is creating the index right now
                return None
            raise
        return (str(row[0]), int(row[1]), int(row[2])) if row is not None else None


class PackWriter:
    """Appends documents to pack files of its own: no file is created per document. What it appends is
    neither durable nor served until :meth:`LocalStore.commit` is given the :class:`Packed` it returns."""

    def __init__(self, store: LocalStore, *, limit: int = PACK_LIMIT) -> None:
        self.store = store
        self.limit = limit
        self._fd: int | None = None
        self._name = ""
        self._size = 0
        self._new = False  # a pack opened since the last sync: its folder entry is not on disk yet

    def add(self, data: bytes) -> Packed:
        digest = sha256(data)
        if self.store.has(digest):
            return Packed(digest)
        if self._fd is None or self._size >= self.limit:
            self._open()
        assert self._fd is not None
        record = _HEADER.pack(_MAGIC, digest, len(data)) + data
        try:
            written = os.write(self._fd, record)
            if written != len(record):
                raise OSError(f"short write to pack {self._name}")
        except BaseException:
            self.close()  # where the next record would start is unknown now: start a new pack
            raise
        offset = self._size + _HEADER.size
        self._size += len(record)
        return Packed(digest, self._name, offset, len(data))

    def sync(self) -> None:
        """Flush what this writer appended (and a new pack's name in its folder) to disk: a batch's workers
        do it at the end of each chunk, so that the batch process's commit, between preparing and signing,
        writes only the index (two of a 100-order batch's five fsyncs, ~8 ms each on the 2-core machine's
        disk, were the batch process's; the workers wait for them while the other processes run)."""
        if self._fd is None:
            return
        os.fsync(self._fd)
        if self._new:
            _fsync(self.store.root / "packs")
            self._new = False

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _open(self) -> None:
        self.close()
        folder = self.store.root / "packs"
        folder.mkdir(parents=True, exist_ok=True)
        self._name = f"{time.time_ns()}-{os.getpid()}-{secrets.token_hex(4)}.pack"
        self._fd = os.open(folder / self._name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o666)
        self._size = 0
        self._new = True


def _records(pack: Path) -> Iterator[tuple[bytes, int, int]]:
    """The (SHA-256, offset, length) of each whole, intact record of a pack."""
    with pack.open("rb") as handle:
        position = 0
        while True:
            header = handle.read(_HEADER.size)
            if len(header) < _HEADER.size:
                return
            magic, digest, length = _HEADER.unpack(header)
            data = handle.read(length)
            if magic != _MAGIC or len(data) < length or sha256(data) != digest:
                return  # a torn or foreign tail: nothing after it was committed by this pack's writer
            yield digest, position + _HEADER.size, length
            position += _HEADER.size + length


def _fsync(path: Path) -> None:
    """Flush a file (or a folder's entries) to disk, whoever wrote it."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def current_umask() -> int:
    """The process's umask, read without changing it (Linux: /proc; elsewhere set and restored at once)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o077)
    os.umask(mask)
    return mask


def write_atomic(path: Path, data: bytes, *, private: bool = False, durable: bool = False) -> None:
    """Write `data` to `path` through a temporary file and a rename: never a half-written file (the one
    atomic-write helper).

    The file gets the mode any new file gets (0666 less the umask): stamped PDFs, QR codes and exports are
    meant to be shared. `private` (keys, secrets): 0600 whatever the umask. `durable` (the local chain's
    state): the data and the rename are flushed to disk (fsync of the file, then of the folder)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, 0o600 if private else 0o666 & ~current_umask())
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if durable:
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)

