"""The order's QR code: its matrix, drawn as PDF operators, SVG or PNG, and read back from a page.

Every QR peru-compras makes encodes the order's ``verify_url`` with error correction level M or better
(segno raises the level when the symbol size allows it), a 4-module quiet zone, no Micro QR.

Speed: ``segno.make`` places the message and scores the eight data masks (ISO/IEC 18004 7.8.3 picks the
lowest penalty) with a Python loop per module: about 6.5 ms a code here, more than the rest of a stamp.
:func:`qr_matrix` gives exactly segno's symbol (same version, level and mask, module for module; a test
compares them over versions 1 to 38): segno's encoder picks the version and level, but the byte-mode
segment, the codewords and the Reed-Solomon blocks are computed here (tests/test_qr_encoder.py holds them
equal to segno's), the bits go through a placement order cached per version, and each mask is scored on
the whole matrix held as one integer (a byte per module) with shifts and ``bytes.find`` instead of a loop
per module, its column and N3 views made once per code (:func:`_views`). Measured (process CPU, load ~7 on
2 cores) for a 192-character signed-QR text, version 10: 2.38 ms a code before the segment, codewords and
blocks moved here, 1.45 ms after (the message itself 1.12 -> 0.13 ms), 1.09 ms with the views made once;
the eight mask scores (N3's scan and N1/N2, ~0.07 ms each) are most of what is left.

Reading back (:func:`decode_pages`) uses the real tools a clerk's checks would: Poppler's ``pdftoppm``
renders the page in grey at 150 dpi (never over 1,754 pixels a side) and ZBar's ``zbarimg`` decodes it,
each with 1 GiB of memory and 10 s. Both are optional at run time; without them the function returns an
empty list.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import operator
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

from .errors import InvalidDocument

if TYPE_CHECKING:
    import segno


class _Loaded:
    """A module imported on first use, its names then copied in: reading a QR back (the batch's check of a
    PDF that is not stamped) needs no segno, which costs a worker 22 ms to import (its writers import
    urllib.request; ``python -X importtime -c "import peru_compras.qr"``)."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        self.__dict__.update(vars(importlib.import_module(self._name)))
        return self.__dict__[attr]


# segno's encoder internals are untyped; the symbol they give is checked against segno.make by a test
_encoder: Any = _Loaded("segno.encoder")
_consts: Any = _Loaded("segno.consts")

#: modules of light margin around the symbol (the standard's minimum)
QUIET_ZONE = 4

_N3 = b"\x01\x00\x01\x01\x01\x00\x01"
_LIGHT4 = b"\x00" * 4


def make(verify_url: str) -> segno.QRCode:
    """The segno QR code for `verify_url` (level M or better, never Micro QR)."""
    import segno

    return segno.make(verify_url, error="m", micro=False)


@dataclass(frozen=True, slots=True)
class _Layout:
    """Per QR version, every row of the matrix laid end to end as one int (a byte per module)."""

    width: int
    base: int  # function patterns (finder, timing, alignment); 0 on data and format modules
    region: int  # 0x01 on data modules
    masks: tuple[int, ...]  # the eight mask patterns, limited to the data region
    ones: int  # 0x01 on every module
    not_first: int  # 0x01 on every module but the first of each row
    from_fifth: int  # 0x01 from the fifth module of each row on
    not_first_row: int  # 0x01 on every module of rows 1..n
    place: Callable[[bytes], tuple[int, ...]]  # message bits + b"\0" -> the flat matrix's data modules
    message_bits: int
    base_views: tuple[int, int]  # `base` seen as :func:`_views` sees a matrix
    mask_views: tuple[tuple[int, int], ...]  # each of `masks` seen so


@cache
def _layout(version: int) -> _Layout:
    width = _encoder.calc_matrix_size(version)
    matrix = _encoder.make_matrix(width, width)
    _encoder.add_finder_patterns(matrix, width, width)
    _encoder.add_alignment_patterns(matrix, width, width)
    cells = b"".join(bytes(row) for row in matrix)

    def whole(data: bytes) -> int:
        return int.from_bytes(data, "big")

    masks = tuple(
        whole(bytes(1 if cells[i * width + j] == 2 and function(i, j) else 0
                    for i in range(width) for j in range(width)))
        for function in _encoder.get_data_mask_functions(False)
    )
    row_ones = b"\x01" * width
    placement = _placement(cells, width)
    inverse = [len(placement)] * (width * width)  # light where no message bit goes: the b"\0" after the bits
    for bit, position in enumerate(placement):
        inverse[position] = bit
    return _Layout(
        width=width,
        base=whole(bytes(0 if v == 2 else v for v in cells)),
        region=whole(bytes(1 if v == 2 else 0 for v in cells)),
        masks=masks,
        ones=whole(row_ones * width),
        not_first=whole((b"\x00" + row_ones[1:]) * width),
        from_fifth=whole((b"\x00" * 4 + row_ones[4:]) * width),
        not_first_row=whole(b"\x00" * width + row_ones * (width - 1)),
        place=operator.itemgetter(*inverse),
        message_bits=len(placement),
        base_views=_views(whole(bytes(0 if v == 2 else v for v in cells)), width),
        mask_views=tuple(_views(mask, width) for mask in masks),
    )


def _placement(cells: bytes, width: int) -> tuple[int, ...]:
    """ISO/IEC 18004 7.7.3: the data modules in the order the message's bits fill them (two-module
    columns from the right, alternately upwards and downwards, skipping the vertical timing pattern) —
    segno's ``add_codewords`` as a list of positions, computed once per version."""
    order = []
    for column in range(width - 1, 0, -2):
        right = column - 1 if column <= 6 else column
        for vertical in range(width):
            for z in (0, 1):
                j = right - z
                upwards = ((right & 2) == 0) ^ (j < 6)
                i = width - 1 - vertical if upwards else vertical
                if cells[i * width + j] == 2:
                    order.append(i * width + j)
    return tuple(order)


def _message(verify_url: str) -> tuple[int, int, bytes]:
    """segno's own steps up to the final message (data + error correction codewords as bits):
    version, error level and bits, for level M (raised when the version allows), never Micro QR."""
    segments = _segments(verify_url)
    version = _encoder.find_version(segments, _consts.ERROR_LEVEL_M, eci=False, micro=False)
    error = _encoder.boost_error_level(version, _consts.ERROR_LEVEL_M, segments, False)
    buff = _encoder.Buffer()
    ver_range = _encoder.version_range(version)
    for segment in segments:
        _encoder.write_segment(buff, segment, None, ver_range, False)
    capacity = _consts.SYMBOL_CAPACITY[version][error]
    _encoder.write_terminator(buff, capacity, None, len(buff))
    _encoder.write_padding_bits(buff, version, len(buff))
    _encoder.write_pad_codewords(buff, version, capacity, len(buff))
    # make_final_message, with the bits expanded through a table: interleave the data codewords of the
    # blocks, then their error correction codewords, then the remainder bits (versions 2-6: 7 bits)
    data_blocks, error_blocks = _blocks(_consts.ECC[version][error], _codewords(buff.getbits()))
    message = bytearray()
    for blocks in (data_blocks, error_blocks):
        for index in range(max(len(block) for block in blocks)):
            message.extend(block[index] for block in blocks if index < len(block))
    remainder = 7 if 2 <= version <= 6 else 3 if 14 <= version <= 20 or 28 <= version <= 34 else (
        4 if 21 <= version <= 27 else 0)
    return version, error, b"".join(_BITS[codeword] for codeword in message) + b"\0" * remainder


def _blocks(ec_infos: Any, codewords: bytes) -> tuple[list[bytes], list[bytes]]:
    """segno's ``make_blocks``: the data codewords cut into blocks, and each block's Reed-Solomon error
    correction codewords — the remainder of the division by the generator polynomial kept as one int
    (a byte per codeword) and stepped with a table of the polynomial's 256 multiples: one shift and one
    XOR per data codeword instead of a loop over the error codewords. Measured on a 200-character text
    (version 10-M, 4 x 26 + 1 x 26 error codewords): 0.77 ms in segno, 0.04 ms here."""
    data_blocks, error_blocks = [], []
    start = 0
    for ec_info in ec_infos:
        count = ec_info.num_total - ec_info.num_data
        multiples = _generator_multiples(count)
        top = 8 * (count - 1)
        keep = (1 << top) - 1
        for _ in range(ec_info.num_blocks):
            block = codewords[start:start + ec_info.num_data]
            start += ec_info.num_data
            remainder = 0
            for codeword in block:
                remainder = ((remainder & keep) << 8) ^ multiples[(remainder >> top) ^ codeword]
            data_blocks.append(block)
            error_blocks.append(remainder.to_bytes(count, "big"))
    return data_blocks, error_blocks


def _segments(text: str) -> Any:
    """segno's ``prepare_data(text, None, None)``; in byte mode (every verify URL: it has lower-case
    letters) the segment's bits come from one conversion through text rather than a generator per byte:
    0.21 ms for a 200-character text in segno, 0.02 ms here."""
    data, length, encoding = _encoder.data_to_bytes(text, None)
    if _encoder.find_mode(data) != _consts.MODE_BYTE:
        return _encoder.prepare_data(text, None, None)
    bits = bytearray(bin(int.from_bytes(b"\1" + data, "big"))[3:].encode().translate(_BINARY_BITS))
    segments = _encoder.Segments()
    segments.add_segment(_encoder._Segment(bits, length, _consts.MODE_BYTE, encoding))
    return segments


def _codewords(bits: bytearray) -> bytes:
    """segno's ``Buffer.toints`` (a bit a byte, eight to a codeword, the last one padded with 0 bits) in
    one conversion through text: 0.30 ms for a version-10 message in segno, 0.01 ms here."""
    count = -(-len(bits) // 8)
    text = bytes(bits).ljust(8 * count, b"\0").translate(_BINARY_DIGITS)
    return int(text, 2).to_bytes(count, "big") if count else b""


_BINARY_DIGITS = bytes.maketrans(b"\0\1", b"01")
_BINARY_BITS = bytes.maketrans(b"01", b"\0\1")


@cache
def _generator_multiples(count: int) -> tuple[int, ...]:
    """f x the generator polynomial of `count` error correction codewords (its leading 1 left out), in
    GF(256), for every byte f, each as an int of `count` bytes."""
    exp, log, generator = _consts.GALIOS_EXP, _consts.GALIOS_LOG, _consts.GEN_POLY[count]
    return (0, *(int.from_bytes(bytes(exp[log[f] + g] for g in generator), "big") for f in range(1, 256)))


#: each byte value as its eight bits, most significant first, one byte per bit
_BITS = tuple(bytes((value >> shift) & 1 for shift in range(7, -1, -1)) for value in range(256))


def _n1_n2(cells: int, layout: _Layout) -> tuple[int, int]:
    """N1 (runs of five or more same-colour modules; length - 2 points each) of the rows of `cells`, and
    N2 (2x2 blocks of one colour) — with shifts on the whole matrix as one int, a byte per module."""
    same_left = ((cells ^ (cells >> 8)) ^ layout.ones) & layout.not_first
    windows = same_left & (same_left >> 8) & (same_left >> 16) & (same_left >> 24) & layout.from_fifth
    starts = windows & ((windows >> 8) ^ layout.ones)
    n1 = windows.bit_count() + 2 * starts.bit_count()
    same_above = ((cells ^ (cells >> (8 * layout.width))) ^ layout.ones) & layout.not_first_row
    n2 = (same_above & (same_above >> 8) & same_left).bit_count()
    return n1, n2


def _n3(joined: bytes) -> int:
    """segno's N3 count over rows laid end to end with four light modules between them (the same
    quirks as segno's per-row scan: a pattern at either end of a row always counts)."""
    count = 0
    idx = joined.find(_N3)
    while idx != -1:
        offset = idx + 7
        if joined[idx - 4:idx] == _LIGHT4 or joined[offset:offset + 4] == _LIGHT4:  # (never cut short: light ends)
            count += 1
        else:
            offset = idx + 4
        idx = joined.find(_N3, offset)
    return count


def _views(cells: int, width: int) -> tuple[int, int]:
    """A matrix (a byte per module, rows end to end) as the other two ints the penalty reads: its columns
    end to end, and its rows then its columns with four light modules before, between and after them (what
    N3 scans). Both are byte permutations with zeros added, so the view of ``base | (data ^ mask)`` is
    ``view(base) | (view(data) ^ view(mask))``: the layout keeps the views of base and masks, a code makes
    the views of its data once, and no mask has to rebuild them (8 x 0.03 ms saved a version-10 code)."""
    flat = cells.to_bytes(width * width, "big")
    columns = b"".join(flat[j::width] for j in range(width))
    gap = b"\x00" * 4
    joined = gap + gap.join(flat[i:i + width] for i in range(0, width * width, width)) + gap
    joined += gap.join(columns[i:i + width] for i in range(0, width * width, width)) + gap
    return int.from_bytes(columns, "big"), int.from_bytes(joined, "big")


def _score(cells: int, columns: int, joined: int, layout: _Layout) -> int:
    """The ISO/IEC 18004 penalty (N1 + N2 + N3 + N4) of a masked matrix, as segno computes it; `columns` and
    `joined` are its :func:`_views`."""
    width = layout.width
    row_n1, n2 = _n1_n2(cells, layout)
    column_n1, _ = _n1_n2(columns, layout)
    n3 = _n3(joined.to_bytes(2 * width * (width + 4) + 4, "big"))
    n4 = 10 * int(abs(float(cells.bit_count()) / (width * width) * 100 - 50) / 5)  # a module is 0 or 1
    return row_n1 + column_n1 + 3 * n2 + 40 * n3 + n4


def qr_matrix(verify_url: str) -> tuple[bytes, ...]:
    """The QR symbol of `verify_url` as rows of bytes (1 dark, 0 light), without the quiet zone.

    Module for module the symbol of ``segno.make(verify_url, error="m", micro=False)`` (a test compares
    them), several times faster (see the module docstring): the message is segno's, the bits are placed
    through a cached order, and the eight masks are scored on the whole matrix at once.
    """
    version, error, bits = _message(verify_url)
    layout = _layout(version)
    width = layout.width
    if len(bits) != layout.message_bits:
        raise RuntimeError(f"QR version {version}: {len(bits)} message bits for {layout.message_bits} modules")
    data = int.from_bytes(bytes(layout.place(bits + b"\0")), "big")
    data_columns, data_joined = _views(data, width)
    base_columns, base_joined = layout.base_views
    best_cells, best_score, best_mask = 0, -1, 0
    for number, (pattern, (pattern_columns, pattern_joined)) in enumerate(zip(layout.masks, layout.mask_views,
                                                                               strict=True)):
        cells = layout.base | (data ^ pattern)
        score = _score(cells, base_columns | (data_columns ^ pattern_columns),
                       base_joined | (data_joined ^ pattern_joined), layout)
        if best_score < 0 or score < best_score:
            best_cells, best_score, best_mask = cells, score, number
    raw = best_cells.to_bytes(width * width, "big")
    final = tuple(bytearray(raw[i:i + width]) for i in range(0, width * width, width))
    _encoder.add_format_info(final, version, error, best_mask)
    _encoder.add_version_info(final, version)
    return tuple(bytes(row) for row in final)


def _number(value: float) -> str:
    text = f"{value:.4f}".rstrip("0").rstrip(".")
    return text if text not in ("-0", "") else "0"


_RUNS = re.compile(rb"\x01+")


def pdf_operators(matrix: Sequence[bytes], x: float, y: float, size: float) -> bytes:
    """PDF content operators drawing the symbol with its quiet zone as a `size`-point square whose
    lower-left corner is (x, y): a white square, then, in a coordinate system of one unit per module,
    one rectangle per run of dark modules and a single fill."""
    modules = len(matrix) + 2 * QUIET_ZONE
    unit = _number(size / modules)
    parts = [f"q {unit} 0 0 {unit} {_number(x)} {_number(y)} cm 1 g 0 0 {modules} {modules} re f 0 g\n"]
    top = modules - QUIET_ZONE - 1
    for row_index, row in enumerate(matrix):
        row_y = top - row_index
        for match in _RUNS.finditer(row):
            start = match.start()
            parts.append(f"{start + QUIET_ZONE} {row_y} {match.end() - start} 1 re\n")
    parts.append("f Q\n")
    return "".join(parts).encode("ascii")


def svg(verify_url: str, *, scale: int = 4) -> bytes:
    """The QR as an SVG document (quiet zone included)."""
    out = io.BytesIO()
    make(verify_url).save(out, kind="svg", scale=scale, border=QUIET_ZONE, xmldecl=True,
                          title=verify_url)
    return out.getvalue()


def png(verify_url: str, *, scale: int = 10) -> bytes:
    """The QR as a PNG image (quiet zone included); `scale` pixels per module."""
    out = io.BytesIO()
    make(verify_url).save(out, kind="png", scale=scale, border=QUIET_ZONE)
    return out.getvalue()


# -- reading a QR back from a PDF page ----------------------------------------------------------------

def tools_available() -> bool:
    """Whether pdftoppm and zbarimg are installed (needed by :func:`decode_pages`)."""
    return shutil.which("pdftoppm") is not None and shutil.which("zbarimg") is not None


#: the rendered page fits in this many pixels each way (A4 at 150 dpi), whatever its size in points
RENDER_PIXELS = 1754
#: each tool's address-space limit and time limit
RENDER_MEMORY = 1024 * 1024 * 1024
RENDER_SECONDS = 10.0


class RenderError(InvalidDocument):
    """A page could not be rendered (or its QR read) within the time and memory limits."""


def _limit_memory() -> None:  # runs in the child, before exec
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (RENDER_MEMORY, RENDER_MEMORY))


def decode_page(document: bytes, page: int = 1, *, dpi: int = 150, timeout: float = RENDER_SECONDS) -> list[str]:
    """The QR codes on page `page` (1-based) of a PDF (see :func:`decode_pages`)."""
    return next((texts for _, texts in decode_pages(document, [page], dpi=dpi, timeout=timeout)), [])


def decode_pages(document: bytes, pages: Iterable[int], *, dpi: int = 150,
                 timeout: float = RENDER_SECONDS) -> Iterator[tuple[int, list[str]]]:
    """(page, QR codes found) for each of `pages` (1-based) of a PDF, rendered in grey by pdftoppm and read
    by zbarimg, one page at a time (stop early: the later pages are not rendered). The file is written once.

    Yields nothing when the tools are missing; a page where nothing is found gives []. The PDF is untrusted:
    each page is rendered at `dpi` but never over :data:`RENDER_PIXELS` pixels on its longer side (a
    10,000-point page is drawn small, not at 150 dpi), and both tools run as subprocesses in a private
    temporary folder with :data:`RENDER_MEMORY` of address space and `timeout` seconds each. A tool that runs
    out of either raises :class:`RenderError` (exit 2), which names the page and the limit.
    """
    pages = list(pages)
    if not pages or not tools_available():
        return
    with tempfile.TemporaryDirectory(prefix="peru-compras-qr-") as folder:
        source = os.path.join(folder, "in.pdf")
        with open(source, "wb") as handle:
            handle.write(document)
        for page in pages:
            yield page, _decode_one(source, folder, page, dpi, timeout)


def _decode_one(source: str, folder: str, page: int, dpi: int, timeout: float) -> list[str]:
    prefix = os.path.join(folder, f"page-{page}")
    image = prefix + ".pgm"
    try:
        rendered = _run(["pdftoppm", "-r", str(dpi), "-scale-to", str(RENDER_PIXELS), "-gray", "-f", str(page),
                         "-l", str(page), "-singlefile", source, prefix], f"page {page} of the PDF", "rendered",
                        timeout)
        if rendered is None or not os.path.exists(image):
            return []
        return _zbar(image, f"page {page} of the PDF", timeout)
    finally:
        with contextlib.suppress(OSError):
            os.remove(image)


def decode_image(image: bytes, *, timeout: float = RENDER_SECONDS) -> list[str]:
    """The QR codes in a photo or scan (PNG, JPEG, … as zbarimg reads them), bounded like
    :func:`decode_pages` (a private folder, :data:`RENDER_MEMORY`, `timeout`); [] without zbarimg."""
    if shutil.which("zbarimg") is None:
        return []
    with tempfile.TemporaryDirectory(prefix="peru-compras-qr-") as folder:
        path = os.path.join(folder, "image")
        with open(path, "wb") as handle:
            handle.write(image)
        return _zbar(path, "the image", timeout)


def _zbar(image: str, what: str, timeout: float) -> list[str]:
    result = _run(["zbarimg", "--raw", "-q", "-Sdisable", "-Sqrcode.enable", image], what, "read", timeout)
    if result is None:
        return []
    return [line for line in result.stdout.decode("utf-8", "replace").splitlines() if line]


def _run(command: list[str], what: str, done: str, timeout: float) -> subprocess.CompletedProcess[bytes] | None:
    """`command` with the memory and time limits: its result, None when it failed (or is missing), or
    RenderError when it ran out of time or memory."""
    try:
        result = subprocess.run(command, capture_output=True, timeout=timeout, preexec_fn=_limit_memory,
                                env={"PATH": os.environ.get("PATH", ""), "LC_ALL": "C"})
    except subprocess.TimeoutExpired:
        raise RenderError(f"{what} could not be {done} within {timeout:.0f} s (the limit)",
                          hint=_RENDER_HINT) from None
    except OSError:
        return None
    if result.returncode < 0 or (done == "rendered" and b"out of memory" in result.stderr.lower()):
        raise RenderError(f"{what} could not be {done} within {RENDER_MEMORY // 2**20:,} MiB of memory (the limit)",
                          hint=_RENDER_HINT)
    return result if result.returncode == 0 else None


_RENDER_HINT = "export or print it to PDF again from its source; to verify it by number, give --token or --order-number"
