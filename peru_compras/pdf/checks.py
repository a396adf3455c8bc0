"""What a PDF carries besides the order's drawing: :func:`check_registrable`, asked before registering.

``register`` and ``register-batch`` (with or without ``--no-stamp``) refuse a PDF with active content
(JavaScript, additional actions, Launch and other actions that open files or send data, attached files,
media, XFA) or with a link, marker or printed QR code for any address but the order's verify URL
(``--allow-other-urls`` on ``register`` accepts them with a warning).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pikepdf

from .. import qr
from ..errors import InvalidDocument
from ..terminal import safe
from .markers import INFO_KEY, entry, page_contents, plain_url, stamp_marker
from .open import CheckedPdf, damaged, open_strict

#: actions that run code, open other files or programs, or send data
_ACTIVE_ACTIONS = {"/JavaScript": "JavaScript", "/Launch": "a Launch action (opens a program or file)",
                   "/SubmitForm": "a form submission", "/ImportData": "a data import",
                   "/GoToR": "a link into another file", "/GoToE": "a link into an embedded file",
                   "/Rendition": "a media action", "/RichMediaExecute": "a rich-media script"}
#: annotations that carry files, media or 3D content
_ACTIVE_ANNOTATIONS = {"/FileAttachment": "an attached file", "/Sound": "a sound", "/Movie": "a movie",
                       "/Screen": "a media screen", "/RichMedia": "rich media", "/3D": "3D content"}
_MAX_ACTION_CHAIN = 64


def _actions(value: Any) -> Iterator[pikepdf.Dictionary]:
    """An action and the ones it chains to through /Next (bounded)."""
    pending, seen = [value], 0
    while pending and seen < _MAX_ACTION_CHAIN:
        action = pending.pop()
        if isinstance(action, pikepdf.Array):
            pending.extend(action)
            continue
        if not isinstance(action, pikepdf.Dictionary):
            continue
        seen += 1
        yield action
        if "/Next" in action:
            pending.append(action.get("/Next"))


def _scan_action(value: Any, where: str, found: list[str], urls: list[tuple[str, str]]) -> None:
    for action in _actions(value):
        kind = str(action.get("/S", ""))
        if kind in _ACTIVE_ACTIONS:
            found.append(f"{_ACTIVE_ACTIONS[kind]} ({where})")
        elif kind == "/URI" and "/URI" in action:
            urls.append((str(action.get("/URI")), where))


def _scan(pdf: pikepdf.Pdf) -> tuple[list[str], list[tuple[str, str]]]:
    """What the PDF carries that is not the page's drawing: active content (what, where) and the
    addresses its links and our markers name (url, where)."""
    found: list[str] = []
    urls: list[tuple[str, str]] = []
    # entry(), not .get(): most of these keys are missing, where get costs 2.6 µs (entry 0.35): _scan of the
    # batch benchmark's page 27 -> 10 µs (timeit, process time, best of 7)
    root = pdf.Root
    if "/OpenAction" in root:
        _scan_action(root.get("/OpenAction"), "run on opening, /OpenAction", found, urls)
    if isinstance(entry(root, "/AA"), pikepdf.Dictionary):
        found.append("document actions (/AA)")
    names = entry(root, "/Names")
    if isinstance(names, pikepdf.Dictionary):
        if "/JavaScript" in names:
            found.append("document JavaScript (/Names /JavaScript)")
        if "/EmbeddedFiles" in names:
            found.append("attached files (/Names /EmbeddedFiles)")
    form = entry(root, "/AcroForm")
    if isinstance(form, pikepdf.Dictionary) and "/XFA" in form:
        found.append("an XFA form (/AcroForm /XFA)")
    info = entry(pdf.trailer, "/Info")
    if isinstance(info, pikepdf.Dictionary) and INFO_KEY in info:
        urls.append((str(info.get(INFO_KEY)), "document information"))
    for number, page in enumerate(pdf.pages, start=1):
        obj = page.obj
        if isinstance(entry(obj, "/AA"), pikepdf.Dictionary):
            found.append(f"page actions (page {number} /AA)")
        marker = stamp_marker(obj)
        if marker:
            urls.append((marker, f"page {number} stamp marker"))
        for stream in page_contents(page):
            marker = stamp_marker(stream)
            if marker:
                urls.append((marker, f"page {number} stamp marker"))
        annots = entry(obj, "/Annots")
        for annot in annots if isinstance(annots, pikepdf.Array) else []:
            if not isinstance(annot, pikepdf.Dictionary):
                continue
            subtype = str(annot.get("/Subtype", ""))
            if subtype in _ACTIVE_ANNOTATIONS:
                found.append(f"{_ACTIVE_ANNOTATIONS[subtype]} (page {number})")
            if isinstance(entry(annot, "/AA"), pikepdf.Dictionary):
                found.append(f"annotation actions (page {number} /AA)")
            if "/A" in annot:
                _scan_action(annot.get("/A"), f"page {number} link", found, urls)
    return found, urls


def check_registrable(document: bytes | CheckedPdf, verify_url: str, *, name: str = "document",
                      allow_other_urls: bool = False, warn: Callable[[str], None] | None = None) -> None:
    """Refuse (InvalidDocument, exit 2) a PDF we will not register for `verify_url`:

    - active content: JavaScript (on opening, in the document, in links or form fields), additional
      actions (/AA of the document, a page or an annotation), Launch, form-submission and remote-file
      actions, attached files, media and 3D annotations, XFA forms. A registered original is shown to
      clerks and the public; it must not run anything or carry other files;
    - a link, a peru-compras marker or a printed QR code (page 1 and the last page, read by pdftoppm and
      zbarimg when installed) for any address but `verify_url`: the paper's QR must lead to this order.
      With `allow_other_urls` such a PDF is accepted and each address goes to `warn`. A fragment (a signed
      QR's payload, ``#…``) is not part of the address: `verify_url` with or without one is this order's.

    `document`: a :class:`CheckedPdf` (its open PDF is read, not parsed again: 0.04 ms of ~1 ms per batch
    order, nor the page contents its damage check decoded; it stays open), or bytes that already passed
    :func:`check_pdf` (opened strictly here)."""
    decoded: Mapping[tuple[int, int], bytes] = {}
    if isinstance(document, CheckedPdf):
        name, data, decoded = document.name, document.data, document.decoded
        opened: contextlib.AbstractContextManager[pikepdf.Pdf] = contextlib.nullcontext(document.pdf)
    else:
        data, opened = document, open_strict(document, name)
    own = plain_url(verify_url)
    with opened as pdf:
        try:
            found, urls = _scan(pdf)
            qr_pages = [index + 1 for index in sorted({0, len(pdf.pages) - 1})
                        if _may_show_qr(pdf.pages[index], decoded)]
        except (pikepdf.PdfError, ValueError, RuntimeError, AttributeError, TypeError, IndexError) as exc:
            raise damaged(name, exc) from None
    if found:
        raise InvalidDocument(f"PDF {name!r} carries active content: " + "; ".join(dict.fromkeys(found))[:400] +
                              " — peru-compras registers no PDF that runs code or carries files",
                              hint="print it to PDF again from a viewer (a printed copy has no scripts, actions "
                                   "or attachments), or export it without them")
    # no page that may show a QR: nothing to render (not even a temporary folder: ~2 ms per batch order)
    if qr_pages and (allow_other_urls or all(plain_url(url) == own for url, _ in urls)):  # else refused already
        for page, texts in qr.decode_pages(data, qr_pages):
            urls += [(text, f"QR printed on page {page}") for text in texts]
    other: dict[str, list[str]] = {}
    for url, where in urls:
        if plain_url(url) != own and where not in other.setdefault(url, []):
            other[url].append(where)
    if not other:
        return
    listed = "; ".join(f"{safe(url[:200])} ({', '.join(wheres)})" for url, wheres in other.items())[:400]
    if not allow_other_urls:
        raise InvalidDocument(f"PDF {name!r} already carries another address than this order's {own}: "
                              f"{listed}", hint="give the order's own PDF without another order's QR or links, or "
                              "register it on its own with --allow-other-urls (each address is then printed as a "
                              "warning)")
    if warn is not None:
        warn(f"warning: PDF {name!r} carries another address than {own}: {listed}")


#: path-segment operators (re, l, c, v, y) are the runs of [A-Za-z*] equal to one of them: the content with every
#: other byte made a space, split, and those words counted (the regex (?<![A-Za-z*])(?:re|l|c|v|y)(?![A-Za-z*])
#: counts the same, checked on random bytes; 0.18 -> 0.05 ms on a 4 KB page, 1/8 of a batch order's checks: H5).
#: Counted by one membership test a word, not one list.count a operator: 31 -> 12 µs on the batch benchmark's
#: 4 KB page of 582 words (timeit, process time, best of 9; sum(map(...)) of the same tests: 14 µs).
_PATH_OPS = frozenset((b"re", b"l", b"c", b"v", b"y"))
_LETTERS = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz*")
_ONLY_LETTERS = bytes(c if c in _LETTERS else 32 for c in range(256))
_MIN_QR_PATHS = 40  # a QR version 1 drawn in vectors needs more path segments than this


def _may_show_qr(page: pikepdf.Page, decoded: Mapping[tuple[int, int], bytes]) -> bool:
    """Whether the page draws something a QR could be: an image (in its resources, one form level deep,
    or inline) or many vector path segments. Only such pages are rendered to read their QR codes.
    `decoded`: streams' data already decoded (by object number and generation), read instead of decoding
    them again (the batch benchmark's page, with the other changes here: 72 -> 42 µs)."""
    resources = entry(page.obj, "/Resources")
    xobjects = entry(resources, "/XObject") if isinstance(resources, pikepdf.Dictionary) else None
    forms: list[pikepdf.Stream] = []
    for xobject in xobjects.values() if isinstance(xobjects, pikepdf.Dictionary) else []:
        if not isinstance(xobject, pikepdf.Stream):
            continue
        if xobject.get("/Subtype") == pikepdf.Name.Image:
            return True
        forms.append(xobject)
    segments = 0
    for stream in [*page_contents(page), *forms][:64]:
        if not isinstance(stream, pikepdf.Stream):  # our markers too: they prove nothing
            continue
        data = decoded.get(stream.objgen)
        if data is None:
            data = stream.read_bytes()
        if b"BI" in data and re.search(rb"(?<![A-Za-z])BI(?![A-Za-z])", data):
            return True
        segments += len(list(filter(_PATH_OPS.__contains__, data.translate(_ONLY_LETTERS).split())))
        if segments >= _MIN_QR_PATHS:
            return True
    return False
