"""PDFs from outside: open them safely, stamp the order's QR, find which order a stamped PDF claims.

The stamp is an overlay in a corner of page 1: the QR (it encodes ``verify_url``) and a short line beside
it. The stamp also writes ``verify_url`` into the document information dictionary (``/PeruComprasVerify``)
so :func:`claimed_order_key` can tell which order even an altered copy claims to be.
"""

from __future__ import annotations

import io
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pikepdf
import segno
from reportlab.pdfgen import canvas

from .errors import InvalidDocument
from .order import Order

MAX_PDF_BYTES = 50 * 1024 * 1024
MAX_PAGES = 1000
INFO_KEY = "/PeruComprasVerify"
QR_SIZE = 78.0  # points (~27.5 mm): a phone reads it at arm's length, zbarimg at 150 dpi


def read_pdf(path: Path, *, max_bytes: int = MAX_PDF_BYTES, max_pages: int = MAX_PAGES) -> bytes:
    """The bytes of a PDF file after checking it opens; InvalidDocument (exit 2) otherwise."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise InvalidDocument(f"cannot read PDF {str(path)!r}: {exc.strerror}", hint="check the path") from exc
    if size > max_bytes:
        raise InvalidDocument(f"PDF {str(path)!r} has {size:,} bytes, over the {max_bytes:,}-byte limit",
                              hint="compress it or raise the limit")
    data = path.read_bytes()
    check_pdf(data, name=str(path), max_pages=max_pages)
    return data


def check_pdf(data: bytes, *, name: str = "document", max_pages: int = MAX_PAGES) -> int:
    """Check `data` is a PDF that opens; returns its page count."""
    if not data:
        raise InvalidDocument(f"PDF {name!r} is empty (0 bytes)", hint="give the real file")
    if b"%PDF-" not in data[:1024]:
        raise InvalidDocument(f"{name!r} is not a PDF (no %PDF- header)", hint="give the order's PDF file")
    try:
        with pikepdf.open(io.BytesIO(data)) as pdf:
            pages = len(pdf.pages)
    except pikepdf.PasswordError:
        raise InvalidDocument(f"PDF {name!r} is encrypted with a password",
                              hint="give an unencrypted copy") from None
    except pikepdf.PdfError as exc:
        raise InvalidDocument(f"PDF {name!r} is damaged: {str(exc).splitlines()[0][:160]}",
                              hint="export it again from its source") from None
    if pages == 0:
        raise InvalidDocument(f"PDF {name!r} has no pages", hint="give the order's PDF file")
    if pages > max_pages:
        raise InvalidDocument(f"PDF {name!r} has {pages} pages, over the {max_pages}-page limit",
                              hint="split it or raise the limit")
    return pages


def _overlay(verify_url: str, caption: str, width: float, height: float) -> bytes:
    """A one-page PDF the size of the target page with the QR and caption in the bottom-right corner."""
    qr = segno.make(verify_url, error="m", micro=False)
    matrix = list(qr.matrix)
    modules = len(matrix) + 8  # quiet zone of 4 modules on each side
    unit = QR_SIZE / modules
    x0, y0 = width - QR_SIZE - 18, 14
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=(width, height), invariant=1)
    pdf.setFillColorRGB(1, 1, 1)
    pdf.rect(x0, y0, QR_SIZE, QR_SIZE, stroke=0, fill=1)
    pdf.setFillColorRGB(0, 0, 0)
    for row_index, row in enumerate(matrix):
        y = y0 + QR_SIZE - (row_index + 5) * unit
        for col_index, dark in enumerate(row):
            if dark:
                pdf.rect(x0 + (col_index + 4) * unit, y, unit + 0.01, unit + 0.01, stroke=0, fill=1)
    pdf.setFont("Helvetica", 6.5)
    for index, line in enumerate(caption.splitlines()):
        pdf.drawRightString(x0 - 4, y0 + QR_SIZE - 16 - index * 8, line)
    pdf.save()
    return buffer.getvalue()


def stamp_pdf(document: bytes, verify_url: str, *, order: Order | None = None) -> bytes:
    """`document` with the order's QR (encoding `verify_url`) stamped on page 1's bottom-right corner."""
    caption = "Registrada en blockchain — verifique con el QR"
    if order is not None:
        caption = f"Orden {order.order_number}\n{caption}"
    try:
        with pikepdf.open(io.BytesIO(document)) as pdf:
            page = pdf.pages[0]
            box = page.mediabox
            width, height = float(box[2]) - float(box[0]), float(box[3]) - float(box[1])
            with pikepdf.open(io.BytesIO(_overlay(verify_url, caption, width, height))) as stamp:
                page.add_overlay(stamp.pages[0], pikepdf.Rectangle(float(box[0]), float(box[1]),
                                                                   float(box[2]), float(box[3])))
            pdf.docinfo[INFO_KEY] = verify_url
            out = io.BytesIO()
            pdf.save(out, deterministic_id=True)
            return out.getvalue()
    except pikepdf.PdfError as exc:
        raise InvalidDocument(f"cannot stamp the PDF: {str(exc).splitlines()[0][:160]}") from None


def claimed_verify_url(document: bytes) -> str | None:
    """The verify URL a stamped PDF carries (even when the rest was altered), or None."""
    try:
        with pikepdf.open(io.BytesIO(document)) as pdf:
            value = pdf.docinfo.get(INFO_KEY)
            return str(value) if value is not None else None
    except pikepdf.PdfError:
        return None


def claimed_order_key(document: bytes) -> str | None:
    """``"<entity>/<order number>"`` from the stamped verify URL (``…/o/<entity>/<order number>``)."""
    url = claimed_verify_url(document)
    if not url:
        return None
    parts = urlsplit(url).path.split("/")
    if len(parts) >= 4 and parts[-3] == "o":
        return unquote(parts[-2]) + "/" + unquote(parts[-1])
    return None
