"""The stamp: the order's QR drawn on page 1 (or on an added last page), without touching the page's content.

- on page 1, in a corner (bottom right by default; ``bottom-left``, ``top-right``, ``top-left``), a white
  square with the QR code (of ``verify_url``, or for a signed QR ``verify_url#payload``) and a short line
  beside it, drawn by a small content stream of its own (one ``re`` per run of dark modules, Helvetica for
  the words): nothing is rasterised, and the page's content is wrapped in ``q … Q`` so its graphics state
  cannot leak into the stamp. The corner takes the page's ``/Rotate`` and crop box into account, so it is
  the corner the reader sees;
- or, with ``last-page``, a new last page "Constancia de registro en blockchain" with a large QR and a
  summary of the order, for PDFs whose corners are all taken;
- a link annotation over the QR (the QR is clickable on screen; it carries the QR's whole text) and
  ``verify_url`` (never a fragment) in the document information dictionary (``/PeruComprasVerify``) and in
  the stamp stream's dictionary.

The line beside the QR: the order number, the entity and "verifique con el QR". The hashlink cannot be
printed there: it is the hash of the stamped file, which the line is part of.

Stamping is deterministic (same input, same URL: same bytes, so a retried registration hashes the same)
and trusts no marker: whatever carries our markers (an earlier stamp, or a look-alike made to pass for
one) is taken off and the stamp drawn again, so the QR on the result is always one drawn here. Every
stream of the input is copied as it is, so stamping costs about as much as copying the file.
"""

from __future__ import annotations

import io
import zlib
from typing import Any

import pikepdf

from .. import qr
from ..errors import InvalidDocument, InvalidInput
from ..order import Order
from .checked import open_checked
from .markers import INFO_KEY, STAMP_KEY, page_contents, plain_url, stamp_marker, stamp_urls
from .open import CheckedPdf, Limits, damaged, refuse_warnings, visible_box
from .text import fit_text, num, pdf_text, text_width, wrap_text

#: points (~27.5 mm): a phone reads it at arm's length, zbarimg at 150 dpi. Measured 13:45 UTC (pdftoppm -r 150
#: -gray + zbarimg, 10 different 200-character signed-QR texts, QR version 10, 1.2 pt a module): 10/10 decode
#: at 66, 70, 74 and 78 pt on A4, letter and legal, 20/20 in each corner at 78 pt, 0/10 at 62 pt and below —
#: 78 pt keeps an 18 % margin. (The read-back caps a page at 1,754 pixels a side, so an A3 page renders at
#: ~106 dpi: a 200-character QR then needs 100 pt; plain verify URLs, version <= 5, decode there at 78 pt.)
QR_SIZE = 78.0
#: the longest text the stamp's QR encodes: a verify URL (<= 80) + "#" + a signed payload
MAX_QR_TEXT = 200
PAGE_QR_SIZE = 200.0  # on the added last page
MARGIN_X = 18.0  # from the page's side edge to the QR
MARGIN_Y = 14.0  # from the page's top or bottom edge to the QR
PLACEMENTS = ("bottom-right", "bottom-left", "top-right", "top-left", "last-page")
CAPTION_SIZE = 6.5
_FONT_NAME = "/PCHelv"
_BOLD_NAME = "/PCHelvB"


def caption_lines(order: Order | None) -> list[str]:
    """The short human line(s) printed beside the QR."""
    lines = []
    if order is not None:
        lines += [f"Orden de compra N° {order.order_number}", order.entity.name]
    lines.append("Registrada en blockchain — verifique con el QR")
    return lines


def _font(bold: bool = False) -> pikepdf.Dictionary:
    return pikepdf.Dictionary(Type=pikepdf.Name.Font, Subtype=pikepdf.Name.Type1,
                              BaseFont=pikepdf.Name("/Helvetica-Bold" if bold else "/Helvetica"),
                              Encoding=pikepdf.Name.WinAnsiEncoding)


def _resource_name(resources: pikepdf.Object, kind: str, wanted: str) -> pikepdf.Name:
    """A name for a new resource of `kind` that the page does not use yet (deterministic)."""
    existing = resources.get(kind)
    taken = set(existing.keys()) if isinstance(existing, pikepdf.Dictionary) else set()
    name, counter = wanted, 1
    while name in taken:
        counter += 1
        name = f"{wanted}{counter}"
    return pikepdf.Name(name)


def _add_font(pdf: pikepdf.Pdf, page: pikepdf.Page, wanted: str, *, bold: bool = False) -> pikepdf.Name:
    obj = page.obj
    if "/Resources" not in obj:
        obj.Resources = pikepdf.Dictionary()
    resources = obj.Resources
    if "/Font" not in resources:
        resources.Font = pikepdf.Dictionary()
    name = _resource_name(resources, "/Font", wanted)
    resources.Font[name] = pdf.make_indirect(_font(bold))
    return name


def _view_matrix(page: pikepdf.Page) -> tuple[tuple[float, ...], float, float]:
    """The matrix from the page as the reader sees it (origin bottom left, after /Rotate) to its user
    space, and the seen width and height."""
    x0, y0, x1, y1 = visible_box(page)
    width, height = x1 - x0, y1 - y0
    try:
        rotate = int(page.obj.get("/Rotate", 0)) % 360
    except (TypeError, ValueError):
        rotate = 0
    if rotate == 90:
        return (0, 1, -1, 0, x0 + width, y0), height, width
    if rotate == 180:
        return (-1, 0, 0, -1, x0 + width, y0 + height), width, height
    if rotate == 270:
        return (0, -1, 1, 0, x0, y0 + height), height, width
    return (1, 0, 0, 1, x0, y0), width, height


def _apply(matrix: tuple[float, ...], u: float, v: float) -> tuple[float, float]:
    a, b, c, d, e, f = matrix
    return a * u + c * v + e, b * u + d * v + f


def _link(pdf: pikepdf.Pdf, qr_text: str, matrix: tuple[float, ...],
          rect: tuple[float, float, float, float]) -> pikepdf.Object:
    corners = [_apply(matrix, u, v) for u in (rect[0], rect[2]) for v in (rect[1], rect[3])]
    xs, ys = [p[0] for p in corners], [p[1] for p in corners]
    annotation = pikepdf.Dictionary(
        Type=pikepdf.Name.Annot, Subtype=pikepdf.Name.Link,
        Rect=pikepdf.Array([round(min(xs), 3), round(min(ys), 3), round(max(xs), 3), round(max(ys), 3)]),
        Border=pikepdf.Array([0, 0, 0]), F=4,
        A=pikepdf.Dictionary(S=pikepdf.Name.URI, URI=pikepdf.String(qr_text)),  # a signed QR's fragment too
    )
    annotation[STAMP_KEY] = pikepdf.String(plain_url(qr_text))
    return pdf.make_indirect(annotation)


def _text_ops(font: pikepdf.Name, size: float, x: float, y: float, text: str) -> bytes:
    head = f"BT {font} {num(size)} Tf {num(x)} {num(y)} Td "
    return head.encode() + pdf_text(text) + b" Tj ET\n"


def _corner_ops(placement: str, view_w: float, view_h: float, matrix_ops: bytes, symbol: tuple[bytes, ...],
                font: pikepdf.Name, lines: list[str]) -> tuple[bytes, tuple[float, float, float, float]]:
    """The stamp's operators in seen-page space, and the QR's rectangle there."""
    right = placement.endswith("right")
    top = placement.startswith("top")
    x = view_w - QR_SIZE - MARGIN_X if right else MARGIN_X
    y = view_h - QR_SIZE - MARGIN_Y if top else MARGIN_Y
    ops = [b"q " + matrix_ops + b"\n", qr.pdf_operators(symbol, x, y, QR_SIZE), b"0 g\n"]
    limit = max(60.0, min(210.0, view_w - QR_SIZE - 2 * MARGIN_X - 8))
    leading = CAPTION_SIZE + 1.6
    for index, line in enumerate(lines):
        text = fit_text(line, CAPTION_SIZE, limit)
        line_y = y + QR_SIZE - 12 - index * leading if top else y + 12 + (len(lines) - 1 - index) * leading
        line_x = x - 4 - text_width(text, CAPTION_SIZE) if right else x + QR_SIZE + 4
        ops.append(_text_ops(font, CAPTION_SIZE, line_x, line_y, text))
    ops.append(b"Q\n")
    return b"".join(ops), (x, y, x + QR_SIZE, y + QR_SIZE)


def _summary(order: Order | None, verify_url: str) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    if order is not None:
        rows += [("Orden de compra", f"N° {order.order_number}"), ("Fecha de emisión", order.issued_on),
                 ("Entidad", f"{order.entity.name} ({_party_id(order.entity)})"),
                 ("Proveedor", f"{order.supplier.name} ({_party_id(order.supplier)})"),
                 ("Monto total", f"{order.currency} {order.total_amount}"),
                 ("Ítems", str(len(order.items)))]
    rows.append(("Verificación", verify_url))
    return rows


def _party_id(party: Any) -> str:
    return f"RUC {party.id}" if party.scheme == "PE-RUC" else f"{party.scheme} {party.id}"


def _constancia_ops(width: float, height: float, symbol: tuple[bytes, ...], font: pikepdf.Name,
                    bold: pikepdf.Name, order: Order | None,
                    verify_url: str) -> tuple[bytes, tuple[float, float, float, float]]:
    left = 56.0
    usable = width - 2 * left
    ops = [b"q 0 g\n", _text_ops(bold, 16, left, height - 80, fit_text("Constancia de registro en blockchain", 16,
                                                                     usable, bold=True))]
    intro = ("Este documento fue registrado en una cadena de bloques pública. Escanee el código QR o abra la "
             "dirección de verificación para comprobar que esta copia es el original registrado.")
    y = height - 108
    for line in wrap_text(intro, 10, usable):
        ops.append(_text_ops(font, 10, left, y, line))
        y -= 14
    y -= 10
    for label, value in _summary(order, verify_url):
        ops.append(_text_ops(bold, 10, left, y, label + ":"))
        ops.append(_text_ops(font, 10, left + 110, y, fit_text(value, 10, usable - 110)))
        y -= 16
    size = min(PAGE_QR_SIZE, usable, max(120.0, y - 90))
    qr_x, qr_y = (width - size) / 2, y - 24 - size
    ops.append(qr.pdf_operators(symbol, qr_x, qr_y, size))
    note = "La huella (hashlink) de este archivo figura en la página de verificación."
    ops.append(_text_ops(font, 8, (width - text_width(note, 8)) / 2, qr_y - 18, note))
    ops.append(b"Q\n")
    return b"".join(ops), (qr_x, qr_y, qr_x + size, qr_y + size)


def _remove_stamps(pdf: pikepdf.Pdf) -> None:
    """Take off an earlier stamp (another verify URL): its streams, link and constancia page."""
    last = pdf.pages[-1]
    if len(pdf.pages) > 1 and stamp_marker(last.obj):
        del pdf.pages[-1]
    for index in sorted({0, len(pdf.pages) - 1}):
        page = pdf.pages[index]
        streams = page_contents(page)
        kept = [s for s in streams if not stamp_marker(s)]
        if len(kept) != len(streams):
            page.obj.Contents = pikepdf.Array(kept)
        annots = page.obj.get("/Annots")
        if isinstance(annots, pikepdf.Array):
            kept_annots = [a for a in annots if not stamp_marker(a)]
            if len(kept_annots) != len(annots):
                page.obj.Annots = pikepdf.Array(kept_annots)


def _stream(pdf: pikepdf.Pdf, data: bytes, verify_url: str) -> pikepdf.Stream:
    """A new content stream of the stamp, Flate-compressed here (the save leaves every stream as it is)."""
    stream = pikepdf.Stream(pdf, b"")
    if len(data) > 64:
        stream.write(zlib.compress(data, 6), filter=pikepdf.Name.FlateDecode)
    else:
        stream.write(data)
    stream[STAMP_KEY] = pikepdf.String(verify_url)
    return stream


def stamp_pdf(document: bytes | CheckedPdf, qr_text: str, *, order: Order | None = None,
              placement: str = "bottom-right", name: str = "document", limits: Limits | None = None) -> bytes:
    """`document` with the order's QR stamped as described in the module docstring; `placement` is one of
    :data:`PLACEMENTS`. InvalidDocument for a PDF we do not accept.

    `qr_text` is what the QR encodes: the verify URL, or for a signed QR the verify URL + ``#`` + the
    signed payload (at most :data:`MAX_QR_TEXT` characters). The QR and its link carry the whole text;
    the markers and the printed summary carry the verify URL alone (a fragment never names another order).

    `document` is the bytes (checked here against `limits`, default :class:`Limits`) or a :class:`CheckedPdf`
    (checked already: used up, its name and limits used)."""
    if len(qr_text) > MAX_QR_TEXT:
        raise InvalidInput(f"QR text has {len(qr_text)} characters, over {MAX_QR_TEXT} (what the stamp's QR is "
                           "read at)", hint="stamp the plain verify URL, or a shorter signed payload")
    verify_url = plain_url(qr_text)
    if placement not in PLACEMENTS:
        raise InvalidDocument(f"stamp placement {placement!r} is not one of: " + ", ".join(PLACEMENTS),
                              hint="e.g. bottom-right (the default) or last-page")
    if isinstance(document, CheckedPdf):
        name, limits = document.name, document.limits
        opened = document.take()
    else:
        with open_checked(document, name=name, limits=limits) as checked:
            limits = checked.limits
            opened = checked.take()
    with opened as pdf:
        try:
            # never trusted: whatever carries our markers (an earlier stamp, or a look-alike) is taken off
            # and the stamp drawn again, so the QR on the result is always the one drawn here
            if any(True for _ in stamp_urls(pdf)):
                _remove_stamps(pdf)
            symbol = qr.qr_matrix(qr_text)
            if placement == "last-page":
                _add_constancia(pdf, qr_text, symbol, order)
            else:
                _add_corner(pdf, pdf.pages[0], qr_text, symbol, order, placement)
            pdf.docinfo[INFO_KEY] = pikepdf.String(verify_url)
            out = io.BytesIO()
            # every stream copied as it is: the fast path; every reachable object is read on the way
            pdf.save(out, deterministic_id=True, fix_metadata_version=False, compress_streams=False,
                     stream_decode_level=pikepdf.StreamDecodeLevel.none)
            refuse_warnings(pdf, name, limits)
            return out.getvalue()
        except (pikepdf.PdfError, ValueError, RuntimeError, KeyError, TypeError) as exc:
            raise damaged(name, exc) from None


def _add_corner(pdf: pikepdf.Pdf, page: pikepdf.Page, qr_text: str, symbol: tuple[bytes, ...],
                order: Order | None, placement: str) -> None:
    matrix, view_w, view_h = _view_matrix(page)
    font = _add_font(pdf, page, _FONT_NAME)
    matrix_ops = " ".join(num(v) for v in matrix).encode() + b" cm"
    ops, rect = _corner_ops(placement, view_w, view_h, matrix_ops, symbol, font, caption_lines(order))
    verify_url = plain_url(qr_text)
    page.contents_add(_stream(pdf, b"q\n", verify_url), prepend=True)
    page.contents_add(_stream(pdf, b"Q\n" + ops, verify_url), prepend=False)
    _append_annotation(page, _link(pdf, qr_text, matrix, rect))


def _append_annotation(page: pikepdf.Page, annotation: pikepdf.Object) -> None:
    annots = page.obj.get("/Annots")
    if isinstance(annots, pikepdf.Array):
        annots.append(annotation)
    else:
        page.obj.Annots = pikepdf.Array([annotation])


def _add_constancia(pdf: pikepdf.Pdf, qr_text: str, symbol: tuple[bytes, ...], order: Order | None) -> None:
    verify_url = plain_url(qr_text)
    _, width, height = _view_matrix(pdf.pages[0])
    page = pdf.add_blank_page(page_size=(width, height))
    page.obj[STAMP_KEY] = pikepdf.String(verify_url)
    font = _add_font(pdf, page, _FONT_NAME)
    bold = _add_font(pdf, page, _BOLD_NAME, bold=True)
    ops, rect = _constancia_ops(width, height, symbol, font, bold, order, verify_url)
    page.obj.Contents = _stream(pdf, ops, verify_url)
    _append_annotation(page, _link(pdf, qr_text, (1, 0, 0, 1, 0, 0), rect))


