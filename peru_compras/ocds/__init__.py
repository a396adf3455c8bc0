"""OCDS in and out: Open Contracting Data Standard data as a ``register-batch`` manifest (:mod:`.read`, with
:mod:`.mapping`, :mod:`.identifiers` and :mod:`.clean`), and the registered orders as an OCDS 1.1 release
package (:mod:`.write`).

**In.** :func:`manifest_rows` reads a release package (``{"releases": [...]}``), a record package
(``{"records": [...]}``: each record's ``compiledRelease``, else its releases merged here), a JSON array of
releases, or JSON Lines of releases (or of packages). Releases are grouped by ``ocid`` and merged simply: in
date order (``release.date``; ties keep file order), later non-null values win field by field for each
contract, award, party (by ``id``) and the tender, and the buyer is the latest release's. Each contract with
items, and each award no contract points to (``awardID``) with items, becomes one order, attributed to the
latest release that has it; every other release gets a line saying why it made none. The record fields come
from the paths in README's "OCDS: import mapping and export" table. Messy data is handled so:

- text (names, descriptions, units, places) keeps its casing; runs of white space become one space; the
  classic mojibake of UTF-8 read as Latin-1/Windows-1252 ("PerÃº") is repaired ("Perú") when the text,
  turned back into the bytes it was misread from, decodes strictly as UTF-8 (so text that is already right,
  like "Perú", is never touched); each repair is listed in the line's ``notes``;
- an identifier without a scheme is a ``PE-RUC`` when it is 11 digits with a valid check digit, and is
  refused otherwise; an organisation ``id`` like ``PE-RUC-20131370998`` stands in for a missing identifier;
- currencies: ISO 4217 codes in any casing; ``S/``, ``S/.``, ``SOL``, ``SOLES``, ``NUEVOS SOLES`` → PEN and
  ``US$``, ``DOLARES``, ``DÓLARES`` → USD (noted); anything else is refused with the value;
- an item without a quantity, a release without a buyer in any release of its ocid, a contract without a
  value, place or term: refused, naming what is missing — nothing is invented.

The PDF of an order is ``<pdf-dir>/<order number>.pdf``, or ``<pdf-dir>/<safe name>.pdf`` where the safe
name replaces every run of characters outside ``A-Z a-z 0-9 . _ -`` with ``_`` and trims leading and trailing
dots and underscores (``OC-2026/15`` → ``OC-2026_15.pdf``; the same name ``peru-compras render`` writes by
default). Without ``--pdf-dir``, or when neither file exists, the order PDF is drawn by :mod:`.render`.

**Out.** :func:`export_package` reads every token from the chain (:meth:`Registry.token_ids`, then
:meth:`Registry.read`) and builds one release per order; :func:`dumps` writes amounts as the exact decimals
registered. Extensions (documented in README and ``docs/ocds-extension/``): ``Document.integrity`` in the shape
proposed in open-contracting/standard#1725 (``[{"scheme": "sha256", "id": <hex digest>}]``) and the release's
``chainRegistration`` object.
"""

from __future__ import annotations

from ..manifest import OCDS_KEYS, is_ocds
from .clean import find_pdf, repair_mojibake, safe_name
from .identifiers import co_nit_is_valid, identify, py_ruc_is_valid
from .mapping import NO_PLACE
from .read import MAX_OCDS_BYTES, manifest_rows
from .write import LOCATION_EXTENSION, OCID_PREFIX, dumps, export_package, release_for

__all__ = ["LOCATION_EXTENSION", "MAX_OCDS_BYTES", "NO_PLACE", "OCDS_KEYS", "OCID_PREFIX", "co_nit_is_valid",
           "dumps", "export_package", "find_pdf", "identify", "is_ocds", "manifest_rows", "py_ruc_is_valid",
           "release_for", "repair_mojibake", "safe_name"]
