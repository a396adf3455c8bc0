"""PDFs from outside: open them safely, stamp the order's QR, find which order a PDF claims to be.

Untrusted input throughout. The package, one idea a module:

- :mod:`.open` — the size, page and decoding limits (:class:`Limits`), the damage check that judges a file
  as ``qpdf --check`` does; :mod:`.checked` — reading with them: one file, bytes or many files
  (:func:`read_checked`, :func:`open_checked`, :func:`read_checked_many`, :func:`read_pdf`, :func:`check_pdf`);
- :mod:`.checks` — what may be registered: no active content, no address but the order's
  (:func:`check_registrable`);
- :mod:`.stamp` — the QR stamp in a corner of page 1 or on an added last page (:func:`stamp_pdf`);
- :mod:`.claims` — the verify URL a PDF carries, even when altered (:func:`claimed_verify_url`);
- :mod:`.markers` — the markers a stamp leaves; :mod:`.text` — WinAnsi text and Helvetica widths (also
  used by :mod:`peru_compras.render`).
"""

from __future__ import annotations

from .checked import check_pdf, open_checked, read_checked, read_checked_many, read_pdf
from .checks import check_registrable
from .claims import claimed_order_key, claimed_verify_url, order_key_from_url
from .markers import INFO_KEY, STAMP_KEY
from .open import (
    CHECK_SECONDS,
    MAX_DECODED_BYTES,
    MAX_PAGE_AREA,
    MAX_PAGES,
    MAX_PDF_BYTES,
    CheckedPdf,
    Limits,
)
from .open import check_objects as _check_objects  # old private names, for benchmarks/stamp.py
from .open import open_strict as _open
from .stamp import CAPTION_SIZE, MARGIN_X, MARGIN_Y, PAGE_QR_SIZE, PLACEMENTS, QR_SIZE, caption_lines, stamp_pdf
from .text import pdf_text

__all__ = [
    "CAPTION_SIZE", "CHECK_SECONDS", "INFO_KEY", "MARGIN_X", "MARGIN_Y", "MAX_DECODED_BYTES", "MAX_PAGES",
    "MAX_PAGE_AREA", "MAX_PDF_BYTES", "PAGE_QR_SIZE", "PLACEMENTS", "QR_SIZE", "STAMP_KEY", "CheckedPdf", "Limits",
    "caption_lines", "check_pdf", "check_registrable", "claimed_order_key", "claimed_verify_url",
    "open_checked", "order_key_from_url", "pdf_text", "read_checked", "read_checked_many", "read_pdf", "stamp_pdf",
]
_PRIVATE = (_check_objects, _open)
