"""PDFs from outside: open them safely, stamp the order's QR, find which order a PDF claims to be.

Untrusted input. :func:`read_pdf` and :func:`check_pdf` refuse, with :class:`~peru_compras.errors.InvalidDocument`
(exit 2) and one line naming the file and the next step: a file that is not a PDF, zero bytes, a truncated
file (no ``%%EOF`` near the end), an encrypted file (with or without an opening password: stamping would
override its owner's restrictions, so we register none), more bytes than the size limit (50 MB by default),
more pages than the page limit (1,000), a page larger than twice A0, and a damaged file. The limits come
from the arguments, else the environment (``PERU_COMPRAS_MAX_PDF_BYTES``, ``PERU_COMPRAS_MAX_PDF_PAGES``,
``PERU_COMPRAS_MAX_PDF_DECODED_BYTES``). A PDF with incremental updates is read as its last revision.

Damage is judged as ``qpdf --check`` judges it, without qpdf's repairs: the file is opened strictly and
every object in its cross-reference table read (qpdf reads those reachable from the trailer: these and any
orphan) and every stream's data decoded (:func:`_check_objects`); any warning on the way (an object not at its
cross-reference offset, a loop of cross-reference tables, a missing or truncated object, a stream whose
/Length is wrong, data that does not decode) refuses the file. Decoding is bounded: 256 MiB for any one
stream (qpdf's own limit) and in all, and 20 s. Not done: tokenising page content streams (qpdf does,
at about a second per thousand pages; a content stream with a syntax error is accepted by us and warned
about by qpdf) and decoding images (JPEG and other image codecs are left encoded, as qpdf's default).

The stamp (:func:`stamp_pdf`) adds, without touching the page's own content:

- on page 1, in a corner (bottom right by default; ``bottom-left``, ``top-right``, ``top-left``), a white
  square with the QR code of ``verify_url`` and a short line beside it, drawn by a small content stream
  of its own (one ``re`` per run of dark modules, Helvetica for the words): nothing is rasterised, and the
  page's content is wrapped in ``q … Q`` so its graphics state cannot leak into the stamp. The corner takes
  the page's ``/Rotate`` and crop box into account, so it is the corner the reader sees;
- or, with ``last-page``, a new last page "Constancia de registro en blockchain" with a large QR and a
  summary of the order, for PDFs whose corners are all taken;
- a link annotation over the QR (the QR is clickable on screen) and ``verify_url`` in the document
  information dictionary (``/PeruComprasVerify``) and in the stamp stream's dictionary.

The line beside the QR: the order number, the entity and "verifique con el QR". The hashlink cannot be
printed there: it is the hash of the stamped file, which the line is part of.

Stamping is deterministic (same input, same URL: same bytes, so a retried registration hashes the same)
and trusts no marker: whatever carries our markers (an earlier stamp, or a look-alike made to pass for
one) is taken off and the stamp drawn again, so the QR on the result is always one drawn here. Every
stream of the input is copied as it is, so stamping costs about as much as copying the file.

:func:`check_registrable` is what ``register`` and ``register-batch`` (with or without ``--no-stamp``)
ask before registering: no active content (JavaScript, additional actions, Launch and other actions
that open files or send data, attached files, media, XFA) and no link, marker or printed QR code for any
address but the order's verify URL (``--allow-other-urls`` on ``register`` accepts them with a warning).

:func:`claimed_verify_url` finds the URL again, even in an altered copy: the information dictionary, else
the stamp's stream or page markers, else the QR's link annotation, else (when Poppler and ZBar are
installed) the QR itself, rendered at 150 dpi (at most 1,754 pixels a side) and decoded. It only says
which order to compare with: the verdict is the file's hash against the chain's.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import time
import unicodedata
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pikepdf
import pikepdf.settings

from . import qr
from .errors import InvalidDocument, setting_source
from .order import Order
from .terminal import safe

MAX_PDF_BYTES = 50 * 1024 * 1024
MAX_PAGES = 1000
MAX_DECODED_BYTES = 256 * 1024 * 1024  # every stream decoded, in all, and qpdf's bound on any one stream
MAX_PAGE_AREA = 2 * 2384.0 * 3370.0  # pt²: twice A0
CHECK_SECONDS = 20.0  # reading the whole file, decoded
INFO_KEY = "/PeruComprasVerify"
STAMP_KEY = "/PeruComprasStamp"
QR_SIZE = 78.0  # points (~27.5 mm): a phone reads it at arm's length, zbarimg at 150 dpi
PAGE_QR_SIZE = 200.0  # on the added last page
MARGIN_X = 18.0  # from the page's side edge to the QR
MARGIN_Y = 14.0  # from the page's top or bottom edge to the QR
PLACEMENTS = ("bottom-right", "bottom-left", "top-right", "top-left", "last-page")
CAPTION_SIZE = 6.5
_FONT_NAME = "/PCHelv"
_BOLD_NAME = "/PCHelvB"
_EOF_WINDOW = 1024


@dataclass(frozen=True, slots=True)
class Limits:
    """How much untrusted PDF we accept."""

    max_bytes: int = MAX_PDF_BYTES
    max_pages: int = MAX_PAGES
    max_decoded: int = MAX_DECODED_BYTES

    @classmethod
    def from_env(cls, max_bytes: int | None = None, max_pages: int | None = None) -> Limits:
        """Arguments, else ``PERU_COMPRAS_MAX_PDF_BYTES`` / ``PERU_COMPRAS_MAX_PDF_PAGES`` /
        ``PERU_COMPRAS_MAX_PDF_DECODED_BYTES``, else defaults."""
        return cls(max_bytes if max_bytes is not None else _env_int("PERU_COMPRAS_MAX_PDF_BYTES", MAX_PDF_BYTES),
                   max_pages if max_pages is not None else _env_int("PERU_COMPRAS_MAX_PDF_PAGES", MAX_PAGES),
                   _env_int("PERU_COMPRAS_MAX_PDF_DECODED_BYTES", MAX_DECODED_BYTES))


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip().replace("_", "")
    if not raw:
        return default
    units = {"kb": 1024, "mb": 1024**2, "gb": 1024**3}
    factor = 1
    for suffix, value in units.items():
        if raw.lower().endswith(suffix):
            raw, factor = raw[: -len(suffix)].strip(), value
    if not raw.isdigit() or int(raw) <= 0:
        raise InvalidDocument(f"{setting_source(name)} is {os.environ[name]!r}, not a positive whole number",
                              hint="give e.g. 52428800 or 50MB")
    return int(raw) * factor


# -- opening untrusted PDFs -----------------------------------------------------------------------------

def read_pdf(path: Path, *, max_bytes: int | None = None, max_pages: int | None = None) -> bytes:
    """The bytes of a PDF file after checking it is one we accept; InvalidDocument (exit 2) otherwise."""
    limits = Limits.from_env(max_bytes, max_pages)
    name = str(path)
    try:
        size = path.stat().st_size
        if path.is_dir():
            raise InvalidDocument(f"{name!r} is a folder, not a PDF", hint="give the order's PDF file")
    except OSError as exc:
        raise InvalidDocument(f"cannot read PDF {name!r}: {exc.strerror}", hint="check the path") from None
    _check_size(size, name, limits)
    try:
        with path.open("rb") as handle:
            data = handle.read(limits.max_bytes + 1)
    except OSError as exc:
        raise InvalidDocument(f"cannot read PDF {name!r}: {exc.strerror}",
                              hint="check the file's permissions") from None
    _check_size(len(data), name, limits)
    check_pdf(data, name=name, max_pages=limits.max_pages)
    return data


def _check_size(size: int, name: str, limits: Limits) -> None:
    if size > limits.max_bytes:
        raise InvalidDocument(f"PDF {name!r} has {size:,} bytes, over the {limits.max_bytes:,}-byte limit",
                              hint=f"compress it, or raise {setting_source('PERU_COMPRAS_MAX_PDF_BYTES')}")


def check_pdf(data: bytes, *, name: str = "document", max_pages: int | None = None,
              max_bytes: int | None = None) -> int:
    """Check `data` is a PDF we accept (see the module docstring); returns its page count."""
    limits = Limits.from_env(max_bytes, max_pages)
    _check_size(len(data), name, limits)
    pdf = _open(data, name)
    try:
        pages = _check_pages(pdf, name, limits)
        _check_objects(pdf, name, limits)
    except BaseException:
        pdf.close()
        raise
    _forget_checked()
    _CHECKED[id(data)] = (data, pdf)
    return pages


#: the bytes check_pdf last accepted in this process, and the PDF it opened and read whole: stamp_pdf,
#: given these very bytes (read_pdf's, then the stamp's), uses it instead of reading them all again
_CHECKED: dict[int, tuple[bytes, pikepdf.Pdf]] = {}


def _forget_checked() -> None:
    for _, pdf in _CHECKED.values():
        pdf.close()
    _CHECKED.clear()


def _checked(document: bytes, *, keep: bool = False) -> pikepdf.Pdf | None:
    """The open PDF check_pdf just accepted, if `document` is the very object it checked: taken out, or
    with `keep` only looked at (the caller must not close or change it)."""
    kept = _CHECKED.get(id(document)) if keep else _CHECKED.pop(id(document), None)
    if kept is not None and kept[0] is document:
        return kept[1]
    if kept is not None and not keep:
        kept[1].close()
    return None


def _check_pages(pdf: pikepdf.Pdf, name: str, limits: Limits) -> int:
    try:
        pages = len(pdf.pages)
    except pikepdf.PdfError as exc:
        raise _damaged(name, exc) from None
    _refuse_warnings(pdf, name)  # a page tree through an object that did not resolve: damaged, not empty
    if pages == 0:
        raise InvalidDocument(f"PDF {name!r} has no pages", hint="give the order's PDF file")
    if pages > limits.max_pages:
        raise InvalidDocument(f"PDF {name!r} has {pages:,} pages, over the {limits.max_pages:,}-page limit",
                              hint=f"split it, or raise {setting_source('PERU_COMPRAS_MAX_PDF_PAGES')}")
    for number, page in enumerate(pdf.pages, start=1):
        try:
            media = pikepdf.Rectangle(page.mediabox)  # inherited from the page tree if need be
            area = abs(media.width * media.height)
        except (TypeError, ValueError, pikepdf.PdfError):
            area = MAX_PAGE_AREA + 1  # look at the visible box below
        if area > MAX_PAGE_AREA:
            x0, y0, x1, y1 = _box(page)  # the visible box (a crop box may show less): what is drawn
            if (x1 - x0) * (y1 - y0) <= MAX_PAGE_AREA:
                continue
            raise InvalidDocument(f"PDF {name!r}: page {number} is {x1 - x0:,.0f} × {y1 - y0:,.0f} pt, over the "
                                  f"page-size limit (twice A0, {MAX_PAGE_AREA:,.0f} pt²)",
                                  hint="give the order as printed on paper (A4, letter, legal, up to A0)")
    return pages


#: the filters qpdf's generalized and specialized levels decode (image codecs stay encoded)
_DECODED_FILTERS = frozenset({"/FlateDecode", "/LZWDecode", "/RunLengthDecode", "/ASCII85Decode", "/ASCIIHexDecode",
                              "/Fl", "/LZW", "/RL", "/A85", "/AHx"})


def _check_objects(pdf: pikepdf.Pdf, name: str, limits: Limits) -> None:
    """What qpdf --check does, bounded: every object in the cross-reference table read, strictly (qpdf
    reads those reachable from the trailer: this is those and any orphan), and every stream's data decoded
    (Flate, LZW, RunLength, ASCII85, ASCIIHex and predictors; JPEG and the other image codecs stay encoded,
    as qpdf's default level leaves them). qpdf stops any one stream at the decoded-bytes limit; all streams
    together are held to it too, and the whole to CHECK_SECONDS. Any warning qpdf gives on the way (an
    object not where the table says, a loop of tables, a stream whose /Length is wrong, a truncated object)
    or data that does not decode refuses the file."""
    _qpdf_limits(limits.max_decoded)
    deadline = time.monotonic() + CHECK_SECONDS
    decoded = 0
    scratch = pikepdf.new()  # holds the ASCII85 layers decoded apart (never the checked file itself)
    try:
        for obj in pdf.objects:
            if not isinstance(obj, pikepdf.Stream):
                continue
            filters = obj.get("/Filter")
            names = [filters] if isinstance(filters, pikepdf.Name) else filters if isinstance(
                filters, pikepdf.Array) else []
            if [str(f) for f in names] == ["/ASCII85Decode", "/FlateDecode"] and "/DecodeParms" not in obj:
                decoded += _a85_flate_size(scratch, obj, name, limits.max_decoded - decoded)
            elif all(str(f) in _DECODED_FILTERS for f in names):
                decoded += len(obj.read_bytes(decode_level=pikepdf.StreamDecodeLevel.specialized))  # + RunLength
            if decoded > limits.max_decoded:
                raise _bomb(name, limits)
            if time.monotonic() > deadline:
                raise InvalidDocument(f"PDF {name!r} takes over {CHECK_SECONDS:.0f} s to read",
                                      hint="export or print it to PDF again from its source")
    except InvalidDocument:
        raise
    except (pikepdf.PdfError, ValueError, RuntimeError) as exc:
        if "memory limit exceeded" in str(exc):
            raise _bomb(name, limits) from None
        raise _damaged(name, exc) from None
    finally:
        scratch.close()
    _refuse_warnings(pdf, name, limits)


def _a85_flate_size(scratch: pikepdf.Pdf, stream: pikepdf.Stream, name: str, room: int) -> int:
    """The decoded size of an ASCII85 + Flate stream (ReportLab writes every stream so), decoded as qpdf
    would but faster: qpdf's ASCII85 decoder feeds its Flate decoder four bytes at a time, which costs
    twice the stamp on a 200-page order. ASCII85 by qpdf, then zlib with at most `room` bytes out."""
    ascii85 = pikepdf.Stream(scratch, stream.read_raw_bytes())
    ascii85.Filter = pikepdf.Name.ASCII85Decode
    inflate = zlib.decompressobj()
    try:
        size = len(inflate.decompress(ascii85.read_bytes(), room + 1))
    except (zlib.error, pikepdf.PdfError) as exc:
        raise _damaged(name, RuntimeError(f"error decoding stream data for object {stream.objgen[0]} "
                                          f"{stream.objgen[1]}: {_ADDRESS.sub('', str(exc)).strip()}")) from None
    if size <= room and not inflate.eof:
        raise _damaged(name, RuntimeError(f"error decoding stream data for object {stream.objgen[0]} "
                                          f"{stream.objgen[1]}: the compressed data ends early"))
    return size


def _bomb(name: str, limits: Limits) -> InvalidDocument:
    return InvalidDocument(f"PDF {name!r} decompresses to more than {limits.max_decoded:,} bytes (the limit): "
                           "a compression bomb, or a file far larger than an order",
                           hint="export it to PDF again from its source, or raise "
                                + setting_source("PERU_COMPRAS_MAX_PDF_DECODED_BYTES"))


def _refuse_warnings(pdf: pikepdf.Pdf, name: str, limits: Limits | None = None) -> None:
    warnings = pdf.get_warnings()
    if not warnings:
        return
    if limits is not None and any("memory limit exceeded" in w for w in warnings):
        raise _bomb(name, limits)
    raise _damaged(name, RuntimeError(warnings[0]))


def _qpdf_limits(max_decoded: int) -> None:
    """qpdf's own bounds on decoding one stream (process-wide; the same value every time)."""
    pikepdf.settings.set_qpdf_limits(flate_max_memory=max_decoded, run_length_max_memory=max_decoded,
                                     png_max_memory=max_decoded, tiff_max_memory=max_decoded,
                                     dct_max_memory=max_decoded)


_ADDRESS = re.compile(r"(stream )?<_io\.BytesIO object at 0x[0-9a-fA-F]+>:? ?")
_XREF_WORDS = ("xref", "cross-reference", "expected n n obj", "not found", "loop detected")


def _damaged(name: str, exc: Exception, data: bytes | None = None) -> InvalidDocument:
    """The error for a PDF that does not open strictly, or that qpdf would have to repair (reconstruct its
    cross-reference table, recover a stream's length, guess a truncated object): we do not accept a guess.
    With `data` (a file that did not even open), whether qpdf could rebuild it says if the table is at fault."""
    detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    detail = _ADDRESS.sub("", detail).strip()
    xref = any(word in detail.lower() for word in _XREF_WORDS)
    if not xref and data is not None:
        try:
            with pikepdf.open(io.BytesIO(data), attempt_recovery=True):
                xref = True
        except Exception:  # noqa: BLE001 — any failure: not just the table
            xref = False
    what = "its cross-reference table is damaged" if xref else "it is damaged"
    return InvalidDocument(f"PDF {name!r} cannot be read: {what} ({detail[:160]})",
                           hint="export or print it to PDF again from its source (or repair it: qpdf in.pdf out.pdf)")


def _open(data: bytes, name: str) -> pikepdf.Pdf:
    """Open untrusted bytes strictly (no reconstruction of damaged files); InvalidDocument on any problem."""
    if not data:
        raise InvalidDocument(f"PDF {name!r} is empty (0 bytes)", hint="give the real file; the copy may have failed")
    if b"%PDF-" not in data[:1024]:
        raise InvalidDocument(f"{name!r} is not a PDF (no %PDF- header)", hint="give the order's PDF file")
    if b"%%EOF" not in data[-_EOF_WINDOW:]:
        raise InvalidDocument(f"PDF {name!r} is truncated (no %%EOF end marker)",
                              hint="download or copy the file again")
    try:
        pdf = pikepdf.open(io.BytesIO(data), attempt_recovery=False)
    except pikepdf.PasswordError:
        raise InvalidDocument(f"PDF {name!r} is encrypted with a password",
                              hint="give a copy without an opening password") from None
    except (pikepdf.PdfError, ValueError, RuntimeError) as exc:
        raise _damaged(name, exc, data) from None
    try:
        if pdf.is_encrypted:
            raise InvalidDocument(
                f"PDF {name!r} is encrypted (its owner's restrictions: {_restrictions(pdf)}); peru-compras "
                "does not stamp or register encrypted files",
                hint="ask its author for an unencrypted copy (or, if you may: qpdf --decrypt in.pdf out.pdf)")
        if not isinstance(pdf.Root.get("/Pages"), pikepdf.Dictionary):
            raise ValueError("the catalog has no page tree")
    except (pikepdf.PdfError, ValueError, RuntimeError, InvalidDocument) as exc:
        pdf.close()
        if isinstance(exc, InvalidDocument):
            raise
        raise _damaged(name, exc) from None
    return pdf


def _restrictions(pdf: pikepdf.Pdf) -> str:
    allowed = pdf.allow
    denied = [label for label, ok in (("modify", allowed.modify_other), ("annotate", allowed.modify_annotation),
                                      ("print", allowed.print_highres), ("copy", allowed.extract))
              if not ok]
    return "no " + ", no ".join(denied) if denied else "none"


# -- the stamp --------------------------------------------------------------------------------------------

def _num(value: float) -> str:
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def pdf_text(text: str) -> bytes:
    """`text` as a PDF literal string in WinAnsiEncoding (Spanish fits; other letters lose their accents,
    what still does not fit becomes '?')."""
    try:
        raw = text.encode("cp1252")
    except UnicodeEncodeError:
        plain = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
        raw = "".join(c if _fits(c) else ("?" if not c.isspace() else " ") for c in plain).encode("cp1252")
    raw = raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")
    raw = raw.replace(b"\r", b"\\r").replace(b"\n", b"\\n")
    return b"(" + raw + b")"


def _fits(char: str) -> bool:
    try:
        char.encode("cp1252")
        return True
    except UnicodeEncodeError:
        return False


def _width(text: str, size: float, *, bold: bool = False) -> float:
    from reportlab.pdfbase.pdfmetrics import stringWidth

    return float(stringWidth(text, "Helvetica-Bold" if bold else "Helvetica", size))


def _fit(text: str, size: float, limit: float, *, bold: bool = False) -> str:
    """`text` shortened with an ellipsis to fit `limit` points."""
    if _width(text, size, bold=bold) <= limit:
        return text
    while text and _width(text + "…", size, bold=bold) > limit:
        text = text[:-1]
    return text.rstrip() + "…"


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


def _box(page: pikepdf.Page) -> tuple[float, float, float, float]:
    """The visible box (crop box within the media box) as x0, y0, x1, y1."""
    media = [float(v) for v in page.obj.get("/MediaBox", pikepdf.Array([0, 0, 612, 792]))]
    mx0, mx1 = min(media[0], media[2]), max(media[0], media[2])
    my0, my1 = min(media[1], media[3]), max(media[1], media[3])
    crop = page.obj.get("/CropBox")
    if crop is None:
        return mx0, my0, mx1, my1
    c = [float(v) for v in crop]
    x0, y0 = max(mx0, min(c[0], c[2])), max(my0, min(c[1], c[3]))
    x1, y1 = min(mx1, max(c[0], c[2])), min(my1, max(c[1], c[3]))
    if x1 - x0 < 100 or y1 - y0 < 100:
        return mx0, my0, mx1, my1
    return x0, y0, x1, y1


def _view_matrix(page: pikepdf.Page) -> tuple[tuple[float, ...], float, float]:
    """The matrix from the page as the reader sees it (origin bottom left, after /Rotate) to its user
    space, and the seen width and height."""
    x0, y0, x1, y1 = _box(page)
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


def _link(pdf: pikepdf.Pdf, verify_url: str, matrix: tuple[float, ...],
          rect: tuple[float, float, float, float]) -> pikepdf.Object:
    corners = [_apply(matrix, u, v) for u in (rect[0], rect[2]) for v in (rect[1], rect[3])]
    xs, ys = [p[0] for p in corners], [p[1] for p in corners]
    annotation = pikepdf.Dictionary(
        Type=pikepdf.Name.Annot, Subtype=pikepdf.Name.Link,
        Rect=pikepdf.Array([round(min(xs), 3), round(min(ys), 3), round(max(xs), 3), round(max(ys), 3)]),
        Border=pikepdf.Array([0, 0, 0]), F=4,
        A=pikepdf.Dictionary(S=pikepdf.Name.URI, URI=pikepdf.String(verify_url)),
    )
    annotation[STAMP_KEY] = pikepdf.String(verify_url)
    return pdf.make_indirect(annotation)


def _text_ops(font: pikepdf.Name, size: float, x: float, y: float, text: str) -> bytes:
    head = f"BT {font} {_num(size)} Tf {_num(x)} {_num(y)} Td "
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
        text = _fit(line, CAPTION_SIZE, limit)
        line_y = y + QR_SIZE - 12 - index * leading if top else y + 12 + (len(lines) - 1 - index) * leading
        line_x = x - 4 - _width(text, CAPTION_SIZE) if right else x + QR_SIZE + 4
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
    ops = [b"q 0 g\n", _text_ops(bold, 16, left, height - 80, _fit("Constancia de registro en blockchain", 16,
                                                                     usable, bold=True))]
    intro = ("Este documento fue registrado en una cadena de bloques pública. Escanee el código QR o abra la "
             "dirección de verificación para comprobar que esta copia es el original registrado.")
    y = height - 108
    for line in _wrap(intro, 10, usable):
        ops.append(_text_ops(font, 10, left, y, line))
        y -= 14
    y -= 10
    for label, value in _summary(order, verify_url):
        ops.append(_text_ops(bold, 10, left, y, label + ":"))
        ops.append(_text_ops(font, 10, left + 110, y, _fit(value, 10, usable - 110)))
        y -= 16
    size = min(PAGE_QR_SIZE, usable, max(120.0, y - 90))
    qr_x, qr_y = (width - size) / 2, y - 24 - size
    ops.append(qr.pdf_operators(symbol, qr_x, qr_y, size))
    note = "La huella (hashlink) de este archivo figura en la página de verificación."
    ops.append(_text_ops(font, 8, (width - _width(note, 8)) / 2, qr_y - 18, note))
    ops.append(b"Q\n")
    return b"".join(ops), (qr_x, qr_y, qr_x + size, qr_y + size)


def _wrap(text: str, size: float, limit: float) -> list[str]:
    lines, current = [], ""
    for word in text.split():
        candidate = f"{current} {word}".strip()
        if current and _width(candidate, size) > limit:
            lines.append(current)
            current = word
        else:
            current = candidate
    return [*lines, current] if current else lines


def _contents(page: pikepdf.Page) -> list[pikepdf.Object]:
    contents = page.obj.get("/Contents")
    if contents is None:
        return []
    if isinstance(contents, pikepdf.Array):
        return list(contents)
    return [contents]


def _marker(obj: pikepdf.Object) -> str | None:
    try:
        value = obj.get(STAMP_KEY)
    except (AttributeError, pikepdf.PdfError, ValueError):
        return None
    return str(value) if value is not None else None


def _stamp_urls(pdf: pikepdf.Pdf) -> Iterator[tuple[str, int]]:
    """(verify URL, page index) of every stamp peru-compras put on page 1 or the last page."""
    indexes = {0, len(pdf.pages) - 1}
    for index in sorted(indexes):
        page = pdf.pages[index]
        marker = _marker(page.obj)
        if marker:
            yield marker, index
        for stream in _contents(page):
            marker = _marker(stream)
            if marker:
                yield marker, index


def _remove_stamps(pdf: pikepdf.Pdf) -> None:
    """Take off an earlier stamp (another verify URL): its streams, link and constancia page."""
    last = pdf.pages[-1]
    if len(pdf.pages) > 1 and _marker(last.obj):
        del pdf.pages[-1]
    for index in sorted({0, len(pdf.pages) - 1}):
        page = pdf.pages[index]
        streams = _contents(page)
        kept = [s for s in streams if not _marker(s)]
        if len(kept) != len(streams):
            page.obj.Contents = pikepdf.Array(kept)
        annots = page.obj.get("/Annots")
        if isinstance(annots, pikepdf.Array):
            kept_annots = [a for a in annots if not _marker(a)]
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


def stamp_pdf(document: bytes, verify_url: str, *, order: Order | None = None,
              placement: str = "bottom-right", name: str = "document") -> bytes:
    """`document` with the order's QR (it encodes `verify_url`) stamped as described in the module
    docstring; `placement` is one of :data:`PLACEMENTS`. InvalidDocument for a PDF we do not accept."""
    if placement not in PLACEMENTS:
        raise InvalidDocument(f"stamp placement {placement!r} is not one of: " + ", ".join(PLACEMENTS),
                              hint="e.g. bottom-right (the default) or last-page")
    limits = Limits.from_env()
    _check_size(len(document), name, limits)
    checked = _checked(document)
    with checked or _open(document, name) as pdf:
        if checked is None:  # read_pdf / check_pdf did not just check these very bytes
            _check_pages(pdf, name, limits)
            _check_objects(pdf, name, limits)
        try:
            # never trusted: whatever carries our markers (an earlier stamp, or a look-alike) is taken off
            # and the stamp drawn again, so the QR on the result is always the one drawn here
            if any(True for _ in _stamp_urls(pdf)):
                _remove_stamps(pdf)
            symbol = qr.qr_matrix(verify_url)
            if placement == "last-page":
                _add_constancia(pdf, verify_url, symbol, order)
            else:
                _add_corner(pdf, pdf.pages[0], verify_url, symbol, order, placement)
            pdf.docinfo[INFO_KEY] = pikepdf.String(verify_url)
            out = io.BytesIO()
            # every stream copied as it is: the fast path; every reachable object is read on the way
            pdf.save(out, deterministic_id=True, fix_metadata_version=False, compress_streams=False,
                     stream_decode_level=pikepdf.StreamDecodeLevel.none)
            _refuse_warnings(pdf, name, limits)
            return out.getvalue()
        except (pikepdf.PdfError, ValueError, RuntimeError, KeyError, TypeError) as exc:
            raise _damaged(name, exc) from None


def _add_corner(pdf: pikepdf.Pdf, page: pikepdf.Page, verify_url: str, symbol: tuple[bytes, ...],
                order: Order | None, placement: str) -> None:
    matrix, view_w, view_h = _view_matrix(page)
    font = _add_font(pdf, page, _FONT_NAME)
    matrix_ops = " ".join(_num(v) for v in matrix).encode() + b" cm"
    ops, rect = _corner_ops(placement, view_w, view_h, matrix_ops, symbol, font, caption_lines(order))
    page.contents_add(_stream(pdf, b"q\n", verify_url), prepend=True)
    page.contents_add(_stream(pdf, b"Q\n" + ops, verify_url), prepend=False)
    _append_annotation(page, _link(pdf, verify_url, matrix, rect))


def _append_annotation(page: pikepdf.Page, annotation: pikepdf.Object) -> None:
    annots = page.obj.get("/Annots")
    if isinstance(annots, pikepdf.Array):
        annots.append(annotation)
    else:
        page.obj.Annots = pikepdf.Array([annotation])


def _add_constancia(pdf: pikepdf.Pdf, verify_url: str, symbol: tuple[bytes, ...], order: Order | None) -> None:
    _, width, height = _view_matrix(pdf.pages[0])
    page = pdf.add_blank_page(page_size=(width, height))
    page.obj[STAMP_KEY] = pikepdf.String(verify_url)
    font = _add_font(pdf, page, _FONT_NAME)
    bold = _add_font(pdf, page, _BOLD_NAME, bold=True)
    ops, rect = _constancia_ops(width, height, symbol, font, bold, order, verify_url)
    page.obj.Contents = _stream(pdf, ops, verify_url)
    _append_annotation(page, _link(pdf, verify_url, (1, 0, 0, 1, 0, 0), rect))


# -- what a PDF carries besides the order: active content, other addresses ---------------------------------

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
    root = pdf.Root
    if "/OpenAction" in root:
        _scan_action(root.get("/OpenAction"), "run on opening, /OpenAction", found, urls)
    if isinstance(root.get("/AA"), pikepdf.Dictionary):
        found.append("document actions (/AA)")
    names = root.get("/Names")
    if isinstance(names, pikepdf.Dictionary):
        if "/JavaScript" in names:
            found.append("document JavaScript (/Names /JavaScript)")
        if "/EmbeddedFiles" in names:
            found.append("attached files (/Names /EmbeddedFiles)")
    form = root.get("/AcroForm")
    if isinstance(form, pikepdf.Dictionary) and "/XFA" in form:
        found.append("an XFA form (/AcroForm /XFA)")
    info = pdf.trailer.get("/Info")
    if isinstance(info, pikepdf.Dictionary) and INFO_KEY in info:
        urls.append((str(info.get(INFO_KEY)), "document information"))
    for number, page in enumerate(pdf.pages, start=1):
        if isinstance(page.obj.get("/AA"), pikepdf.Dictionary):
            found.append(f"page actions (page {number} /AA)")
        marker = _marker(page.obj)
        if marker:
            urls.append((marker, f"page {number} stamp marker"))
        for stream in _contents(page):
            marker = _marker(stream)
            if marker:
                urls.append((marker, f"page {number} stamp marker"))
        annots = page.obj.get("/Annots")
        for annot in annots if isinstance(annots, pikepdf.Array) else []:
            if not isinstance(annot, pikepdf.Dictionary):
                continue
            subtype = str(annot.get("/Subtype", ""))
            if subtype in _ACTIVE_ANNOTATIONS:
                found.append(f"{_ACTIVE_ANNOTATIONS[subtype]} (page {number})")
            if isinstance(annot.get("/AA"), pikepdf.Dictionary):
                found.append(f"annotation actions (page {number} /AA)")
            if "/A" in annot:
                _scan_action(annot.get("/A"), f"page {number} link", found, urls)
    return found, urls


def check_registrable(document: bytes, verify_url: str, *, name: str = "document", allow_other_urls: bool = False,
                      warn: Callable[[str], None] | None = None) -> None:
    """Refuse (InvalidDocument, exit 2) a PDF we will not register for `verify_url`:

    - active content: JavaScript (on opening, in the document, in links or form fields), additional
      actions (/AA of the document, a page or an annotation), Launch, form-submission and remote-file
      actions, attached files, media and 3D annotations, XFA forms. A registered original is shown to
      clerks and the public; it must not run anything or carry other files;
    - a link, a peru-compras marker or a printed QR code (page 1 and the last page, read by pdftoppm and
      zbarimg when installed) for any address but `verify_url`: the paper's QR must lead to this order.
      With `allow_other_urls` such a PDF is accepted and each address goes to `warn`.

    The PDF itself must already have passed :func:`check_pdf`; given the very bytes check_pdf accepted, the
    PDF it opened is read again instead of parsing the bytes a second time (0.04 ms of ~1 ms per batch order)."""
    opened = _checked(document, keep=True)
    with contextlib.nullcontext(opened) if opened is not None else _open(document, name) as pdf:
        try:
            found, urls = _scan(pdf)
            qr_pages = [index + 1 for index in sorted({0, len(pdf.pages) - 1}) if _may_show_qr(pdf.pages[index])]
        except (pikepdf.PdfError, ValueError, RuntimeError, AttributeError, TypeError) as exc:
            raise _damaged(name, exc) from None
    if found:
        raise InvalidDocument(f"PDF {name!r} carries active content: " + "; ".join(dict.fromkeys(found))[:400] +
                              " — peru-compras registers no PDF that runs code or carries files",
                              hint="print it to PDF again from a viewer (a printed copy has no scripts, actions "
                                   "or attachments), or export it without them")
    if allow_other_urls or all(url == verify_url for url, _ in urls):  # else refused already: no need to render
        for page in qr_pages:
            urls += [(text, f"QR printed on page {page}") for text in qr.decode_page(document, page)]
    other: dict[str, list[str]] = {}
    for url, where in urls:
        if url != verify_url and where not in other.setdefault(url, []):
            other[url].append(where)
    if not other:
        return
    listed = "; ".join(f"{safe(url[:200])} ({', '.join(wheres)})" for url, wheres in other.items())[:400]
    if not allow_other_urls:
        raise InvalidDocument(f"PDF {name!r} already carries another address than this order's {verify_url}: "
                              f"{listed}", hint="give the order's own PDF without another order's QR or links, or "
                              "register it on its own with --allow-other-urls (each address is then printed as a "
                              "warning)")
    if warn is not None:
        warn(f"warning: PDF {name!r} carries another address than {verify_url}: {listed}")


_PATH_OPS = re.compile(rb"(?<![A-Za-z*])(?:re|l|c|v|y)(?![A-Za-z*])")
_MIN_QR_PATHS = 40  # a QR version 1 drawn in vectors needs more path segments than this


def _may_show_qr(page: pikepdf.Page) -> bool:
    """Whether the page draws something a QR could be: an image (in its resources, one form level deep,
    or inline) or many vector path segments. Only such pages are rendered to read their QR codes."""
    resources = page.obj.get("/Resources")
    xobjects = resources.get("/XObject") if isinstance(resources, pikepdf.Dictionary) else None
    forms: list[pikepdf.Stream] = []
    for xobject in xobjects.values() if isinstance(xobjects, pikepdf.Dictionary) else []:
        if not isinstance(xobject, pikepdf.Stream):
            continue
        if xobject.get("/Subtype") == pikepdf.Name.Image:
            return True
        forms.append(xobject)
    segments = 0
    for stream in [*_contents(page), *forms][:64]:
        if not isinstance(stream, pikepdf.Stream):  # our markers too: they prove nothing
            continue
        data = stream.read_bytes()
        if b"BI" in data and re.search(rb"(?<![A-Za-z])BI(?![A-Za-z])", data):
            return True
        segments += len(_PATH_OPS.findall(data))
        if segments >= _MIN_QR_PATHS:
            return True
    return False


# -- which order does a PDF claim to be? -------------------------------------------------------------------

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
            for url, _ in _stamp_urls(pdf):
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
