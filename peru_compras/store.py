"""The document store: where registered PDFs are kept and published.

The built-in store is a content-addressed folder (``./.peru-compras/documents/`` by default): a PDF lives
at ``<first two hex digits>/<sha256 hex>.pdf`` and is published at ``<base URL>/d/<hashlink>``. Writes are
atomic (a temporary file, then a rename), and a file already there is never replaced by other bytes.
Another backend (S3-compatible storage, say) implements :class:`DocumentStore`.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Protocol

from .errors import PeruComprasError
from .hashing import hashlink, sha256


class DocumentStore(Protocol):
    """Where registered documents are kept."""

    def put(self, data: bytes, *, durable: bool = True) -> bytes:
        """Keep `data`; returns its SHA-256. Storing the same bytes twice is harmless."""
        ...

    def get(self, digest: bytes) -> bytes | None:
        """The document with this SHA-256, or None."""
        ...

    def url(self, digest: bytes) -> str:
        """Where the document with this SHA-256 is published."""
        ...


class LocalStore:
    """A content-addressed folder, published under ``<base_url>/d/<hashlink>``."""

    def __init__(self, root: Path, base_url: str) -> None:
        self.root = root
        self.base_url = base_url.rstrip("/")
        self._folders: set[Path] = set()

    def path(self, digest: bytes) -> Path:
        hexa = digest.hex()
        return self.root / hexa[:2] / f"{hexa}.pdf"

    def put(self, data: bytes, *, durable: bool = True) -> bytes:
        """Keep `data` (atomically; `durable=False` leaves the fsync to the caller, e.g. one per batch)."""
        digest = sha256(data)
        target = self.path(digest)
        if target.exists():
            if sha256(target.read_bytes()) == digest:
                return digest
            raise PeruComprasError(f"the stored file {target} does not match its name",
                                   hint="the store was tampered with: restore it from a backup")
        if target.parent not in self._folders:
            target.parent.mkdir(parents=True, exist_ok=True)
            self._folders.add(target.parent)
        tmp = str(target.parent / f".incoming-{os.getpid()}-{target.name}")
        try:
            with open(tmp, "wb") as handle:
                handle.write(data)
                if durable:
                    handle.flush()
                    os.fsync(handle.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return digest

    def get(self, digest: bytes) -> bytes | None:
        try:
            return self.path(digest).read_bytes()
        except FileNotFoundError:
            return None

    def url(self, digest: bytes) -> str:
        return f"{self.base_url}/d/{hashlink(digest)}"


def write_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary file and a rename: never a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
