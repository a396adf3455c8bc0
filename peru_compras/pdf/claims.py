"""Which order does a PDF claim to be? The verify URL it carries, found again even in an altered copy.

:func:`claimed_verify_url` looks at the information dictionary, else the stamp's stream or page markers,
else the QR's link annotation, else (when Poppler and ZBar are installed) the QR itself, rendered at 150 dpi
(at most 1,754 pixels a side) and decoded. It only says which order to compare with: the verdict is the
file's hash against the chain's.
"""

from __future__ import annotations

import contextlib
import io
import re
from urllib.parse import urlsplit

import pikepdf

from .. import qr
from ..urls import order_key_from_verify_url
from .markers import INFO_KEY, plain_url, stamp_urls
from .open import CheckedPdf

_VERIFY_PATH = re.compile(r"/o/[^/?#]+/[^/?#]+\Z")


def _verify_url(value: object) -> str | None:
    """`value` without its fragment when it is an http(s) URL of an order's page, else None."""
    text = plain_url(str(value))
    try:
        parts = urlsplit(text)
    except ValueError:  # e.g. "http://[x": a QR or a link says what it likes
        return None
    return text if parts.scheme in ("http", "https") and _VERIFY_PATH.search(parts.path) else None


def claimed_verify_url(document: bytes | CheckedPdf, *, decode: bool = True) -> str | None:
    """The verify URL a PDF carries (even when the rest was altered), or None. A fragment (a signed QR's
    payload) is left out: the URL names the order, with a signed QR or a plain one.

    Looks in order at: the information dictionary; the stamp's stream and page markers; link annotations
    on page 1 and the last page; and, with `decode` (and pdftoppm and zbarimg installed), the QR codes
    printed on page 1 and the last page. Given a :class:`CheckedPdf`, its open PDF is read (not parsed
    again) and stays open.
    """
    if isinstance(document, CheckedPdf):
        data = document.data
        opened: contextlib.AbstractContextManager[pikepdf.Pdf] = contextlib.nullcontext(document.pdf)
    else:
        data = document
        try:
            opened = pikepdf.open(io.BytesIO(document), attempt_recovery=False)
        except (pikepdf.PdfError, ValueError, RuntimeError):
            return None
    with opened as pdf:
        try:
            found = _verify_url(pdf.docinfo.get(INFO_KEY, ""))
            found = found or next(filter(None, (_verify_url(url) for url, _ in stamp_urls(pdf))), None)
            count = len(pdf.pages)
            for index in sorted({0, count - 1}):
                annots = pdf.pages[index].obj.get("/Annots")
                for annot in annots if isinstance(annots, pikepdf.Array) and not found else []:
                    action = annot.get("/A") if isinstance(annot, pikepdf.Dictionary) else None
                    uri = action.get("/URI") if isinstance(action, pikepdf.Dictionary) else None
                    found = found or (_verify_url(uri) if uri is not None else None)
        except (pikepdf.PdfError, ValueError, RuntimeError, AttributeError, TypeError):
            return None
    if found or not decode:
        return found
    for _, texts in qr.decode_pages(data, sorted({1, count})):
        found = next(filter(None, map(_verify_url, texts)), None)
        if found:
            return found
    return None


def order_key_from_url(url: str) -> str | None:
    """``"<entity>/<order number>"`` from a verify URL (``…/o/<entity>/<order number>``; a query or a
    fragment is ignored)."""
    return order_key_from_verify_url(url)


def claimed_order_key(document: bytes | CheckedPdf) -> str | None:
    """``"<entity>/<order number>"`` of the order a PDF claims to be (see :func:`claimed_verify_url`)."""
    url = claimed_verify_url(document)
    return order_key_from_url(url) if url else None
