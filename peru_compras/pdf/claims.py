"""Which order does a PDF claim to be? The verify URL it carries, found again even in an altered copy.

:func:`claimed_verify_url` looks at the information dictionary, else the stamp's stream or page markers,
else the QR's link annotation, else (when Poppler and ZBar are installed) the QR itself, rendered at 150 dpi
(at most 1,754 pixels a side) and decoded. It only says which order to compare with: the verdict is the
file's hash against the chain's.
"""

from __future__ import annotations

import io
import re
from urllib.parse import unquote, urlsplit

import pikepdf

from .. import qr
from .markers import INFO_KEY, stamp_urls

_VERIFY_PATH = re.compile(r"/o/[^/?#]+/[^/?#]+$")


def _looks_like_verify_url(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(_VERIFY_PATH.search(parts.path))


def claimed_verify_url(document: bytes, *, decode: bool = True) -> str | None:
    """The verify URL a PDF carries (even when the rest was altered), or None.

    Looks in order at: the information dictionary; the stamp's stream and page markers; link annotations
    on page 1 and the last page; and, with `decode` (and pdftoppm and zbarimg installed), the QR codes
    printed on page 1 and the last page.
    """
    try:
        pdf = pikepdf.open(io.BytesIO(document), attempt_recovery=False)
    except (pikepdf.PdfError, ValueError, RuntimeError):
        return None
    with pdf:
        try:
            value = pdf.docinfo.get(INFO_KEY)
            if value is not None and _looks_like_verify_url(str(value)):
                return str(value)
            for url, _ in stamp_urls(pdf):
                if _looks_like_verify_url(url):
                    return url
            count = len(pdf.pages)
            for index in sorted({0, count - 1}):
                annots = pdf.pages[index].obj.get("/Annots")
                for annot in annots if isinstance(annots, pikepdf.Array) else []:
                    action = annot.get("/A")
                    uri = action.get("/URI") if isinstance(action, pikepdf.Dictionary) else None
                    if uri is not None and _looks_like_verify_url(str(uri)):
                        return str(uri)
        except (pikepdf.PdfError, ValueError, RuntimeError, AttributeError, TypeError):
            return None
    if decode:
        for page_number in sorted({1, count}):
            for text in qr.decode_page(document, page_number):
                if _looks_like_verify_url(text):
                    return text
    return None


def order_key_from_url(url: str) -> str | None:
    """``"<entity>/<order number>"`` from a verify URL (``…/o/<entity>/<order number>``)."""
    parts = urlsplit(url).path.split("/")
    if len(parts) >= 4 and parts[-3] == "o" and parts[-2] and parts[-1]:
        return unquote(parts[-2]) + "/" + unquote(parts[-1])
    return None


def claimed_order_key(document: bytes) -> str | None:
    """``"<entity>/<order number>"`` of the order a PDF claims to be (see :func:`claimed_verify_url`)."""
    url = claimed_verify_url(document)
    return order_key_from_url(url) if url else None


