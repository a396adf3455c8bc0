"""PDFs read and checked (:mod:`.open` says what is checked and how): a file (:func:`read_checked`), bytes
(:func:`open_checked`), or many files (:func:`read_checked_many`: each step over all of them before the
next, for a batch's workers).
"""

from __future__ import annotations

import stat
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

import pikepdf

from ..errors import InvalidDocument
from ..steps import run_steps
from .open import CheckedPdf, Limits, _limits, check_objects, check_pages, check_size, open_strict


def read_checked(path: Path, *, limits: Limits | None = None) -> CheckedPdf:
    """A PDF file read and checked, open; InvalidDocument (exit 2) otherwise."""
    return _one(read_checked_many([path], limits=limits))


def open_checked(data: bytes, *, name: str = "document", limits: Limits | None = None) -> CheckedPdf:
    """`data` opened and checked: the open :class:`CheckedPdf`; InvalidDocument (exit 2) for a PDF we do not
    accept."""
    return _one(_Run(_limits(limits, None, None), None).check([_Opening(name, data=data)], read=False))


def read_checked_many(paths: Sequence[Path], *, limits: Limits | None = None,
                      keep_total: int | None = None) -> list[CheckedPdf | Exception]:
    """:func:`read_checked` for many files: each its open :class:`CheckedPdf`, or what refused it (one of
    :data:`~peru_compras.steps.ITEM_ERRORS`; anything else stops the call with every PDF closed).

    Each step runs over all the files before the next one (read, open, pages, damage), so that its code and
    data stay in the processor's caches: the batch benchmark's 2.6 KB PDFs, 50 at a time, 196 -> 144 µs a
    file (process time, chunks alternated with one file at a time in one process). `keep_total`: the
    decoded streams kept for check_registrable, all the files together (default: KEEP_DECODED_BYTES each)."""
    return _Run(_limits(limits, None, None), keep_total).check([_Opening(str(path), path=path) for path in paths],
                                                              read=True)


def _one(outcomes: list[CheckedPdf | Exception]) -> CheckedPdf:
    (outcome,) = outcomes
    if isinstance(outcome, Exception):
        raise outcome
    return outcome


def read_pdf(path: Path, *, limits: Limits | None = None, max_bytes: int | None = None,
             max_pages: int | None = None) -> bytes:
    """The bytes of a PDF file after checking it is one we accept; InvalidDocument (exit 2) otherwise."""
    with read_checked(path, limits=_limits(limits, max_bytes, max_pages)) as checked:
        return checked.data


def check_pdf(data: bytes, *, name: str = "document", limits: Limits | None = None, max_pages: int | None = None,
              max_bytes: int | None = None) -> int:
    """Check `data` is a PDF we accept; returns its page count."""
    with open_checked(data, name=name, limits=_limits(limits, max_bytes, max_pages)) as checked:
        return checked.pages


def read_at_most(handle: BinaryIO, size: int, most: int) -> bytes:
    """At most `most` bytes of an open file measured at `size` bytes: one read of `size` + 1, and on to `most`
    only if it gave all of that (the file grew since). One read of `most` would allocate all of it (50 MiB
    by default) for every file: read_checked of the 2.6 KB batch-benchmark PDF 31 -> 8 µs for the stat and
    read (timeit, process time, best of 7)."""
    want = min(size + 1, most)
    data = handle.read(want)
    if len(data) == want:
        data += handle.read(most - want)
    return data


class _Opening:
    """One PDF on its way: what is known of it so far, or what refused it."""

    __slots__ = ("data", "decoded", "name", "outcome", "pages", "path", "pdf")

    def __init__(self, name: str, *, path: Path | None = None, data: bytes = b"") -> None:
        self.name, self.path, self.data = name, path, data
        self.pdf: pikepdf.Pdf | None = None
        self.pages = 0
        self.decoded: dict[tuple[int, int], bytes] = {}
        self.outcome: Exception | None = None

    def close(self) -> None:
        if self.pdf is not None:
            self.pdf.close()
            self.pdf = None


class _Run:
    """One call's PDFs through the steps, which share the limits and the decoded bytes still to keep (None: no
    bound)."""

    def __init__(self, limits: Limits, keep_total: int | None) -> None:
        self.limits, self.left = limits, keep_total

    def check(self, work: list[_Opening], *, read: bool) -> list[CheckedPdf | Exception]:
        """`work` read (`read`: else given as bytes), opened and checked: each its CheckedPdf or its refusal."""
        try:
            run_steps(work, [self.read, self.opened, self.paged, self.sound][0 if read else 1:])
        except BaseException:
            for item in work:
                item.close()
            raise
        out: list[CheckedPdf | Exception] = []
        for item in work:
            if item.outcome is not None:
                item.close()  # (refused after it was opened)
                out.append(item.outcome)
            else:
                assert item.pdf is not None
                out.append(CheckedPdf(item.data, item.name, item.pdf, item.pages, self.limits, item.decoded))
        return out

    def read(self, item: _Opening) -> None:
        assert item.path is not None
        name = item.name
        try:
            status = item.path.stat()  # one stat for the size and the kind (path.is_dir() was a second: 1.4 µs)
            if stat.S_ISDIR(status.st_mode):
                raise InvalidDocument(f"{name!r} is a folder, not a PDF", hint="give the order's PDF file")
        except OSError as exc:
            raise InvalidDocument(f"cannot read PDF {name!r}: {exc.strerror}", hint="check the path") from None
        check_size(status.st_size, name, self.limits)
        try:
            with item.path.open("rb") as handle:
                item.data = read_at_most(handle, status.st_size, self.limits.max_bytes + 1)
        except OSError as exc:
            raise InvalidDocument(f"cannot read PDF {name!r}: {exc.strerror}",
                                  hint="check the file's permissions") from None

    def opened(self, item: _Opening) -> None:
        check_size(len(item.data), item.name, self.limits)
        item.pdf = open_strict(item.data, item.name)

    def paged(self, item: _Opening) -> None:
        assert item.pdf is not None
        item.pages = check_pages(item.pdf, item.name, self.limits)

    def sound(self, item: _Opening) -> None:
        """The damage check, keeping decoded streams within what is left to keep."""
        assert item.pdf is not None
        kept = check_objects(item.pdf, item.name, self.limits, keep=item.decoded, room=self.left)
        if self.left is not None:
            self.left -= kept
