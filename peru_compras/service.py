"""The use cases, one function each, called by every face (the command line, the batch, the demo, the page,
a back-office program)::

    session = Session()                                  # settings as the CLI reads them (workspace.py)
    prepared = prepare(order, pdf, base_url=session.base_url, qr_fragment=session.qr_signer())
    registered = register(session, prepared)             # store the stamped PDF, then mint
    verdict = verify_pdf(session.registry(), pdf_in_hand)

- :func:`prepare` validates, stamps and hashes one order's PDF. It is pure (no chain, no store, no file
  written) and every argument pickles, so batch workers call it too.
- :func:`register` stores the prepared PDF and mints the order's token (or supersedes an earlier one),
  finishing the job of an earlier run that minted the very same thing and then stopped.
- :func:`resolve` turns what a person types (token id, document hash, ``ENTITY/ORDER``) into a token id.
- :func:`verify_pdf` answers "is this PDF the registered original?", finding the order the PDF claims to be
  so that a tampered copy reads ``altered`` (not ``not_registered``).
- :func:`record_json` and :meth:`Registered.to_json` are the one JSON of a record and of a registration.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import InvalidInput, OrderNotRegistered, PeruComprasError
from .urls import token_hex

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from pathlib import Path

    from .chain.client import OnChainOrder, Registration, Registry
    from .chain.transactions import Receipt
    from .order import Order
    from .pdf import CheckedPdf, Limits
    from .verify import Verdict
    from .workspace import Session


# -- registering ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Prepared:
    """One order ready to register: its PDF as it will be stored (stamped, or as given) and what it encodes."""

    order: Order
    document: bytes
    sha256: bytes
    verify_url: str
    #: what the QR encodes: the verify URL, or verify URL + "#" + the signed facts (signed_qr.py)
    qr_text: str
    #: one line each (no "warning: " prefix), e.g. a total that differs from the items' sum
    warnings: tuple[str, ...] = ()


def prepare(order: Order, document: bytes | CheckedPdf | None, *, base_url: str, stamp: bool = True,
            placement: str = "bottom-right", allow_other_urls: bool = False, name: str = "document",
            limits: Limits | None = None, qr_fragment: Callable[[Order], str | None] | None = None) -> Prepared:
    """Validate `order` and its PDF, stamp the QR (unless `stamp` is false: the PDF already carries it) and
    hash the result.

    `document` is the PDF's bytes (checked here within `limits`, default :class:`~peru_compras.pdf.Limits`),
    or a :class:`~peru_compras.pdf.CheckedPdf` (read_checked / open_checked: not parsed again; used up), or
    None: the order is drawn (:func:`~peru_compras.render.render_order`) with its QR printed. `qr_fragment`
    (a :class:`~peru_compras.signed_qr.QrSigner`) signs the QR printed; None: a plain QR. A PDF not stamped
    keeps the QR it carries: nothing is signed, and no warning about a signature comes from it.

    Refuses (exit 2) a verify URL over 80 characters, a PDF we do not accept, one with active content or
    (unless `allow_other_urls`) a link or QR for another address. Touches no chain, store or file."""
    (outcome,) = prepare_many([(order, document, name)], base_url=base_url, stamp=stamp, placement=placement,
                              allow_other_urls=allow_other_urls, limits=limits, qr_fragment=qr_fragment)
    if isinstance(outcome, Exception):
        raise outcome
    return outcome


def prepare_many(items: Sequence[tuple[Order, bytes | CheckedPdf | None, str]], *, base_url: str, stamp: bool = True,
                 placement: str = "bottom-right", allow_other_urls: bool = False, limits: Limits | None = None,
                 qr_fragment: Callable[[Order], str | None] | None = None) -> list[Prepared | Exception]:
    """:func:`prepare` for many orders, each given as (order, document, name): `name` names its PDF in
    messages. Each answer is the order's :class:`Prepared`, or what refused it (one of
    :data:`~peru_compras.steps.ITEM_ERRORS`: the other orders go on; anything else stops the call). Every
    :class:`~peru_compras.pdf.CheckedPdf` given is used up, refused or not.

    The steps run one at a time over all the orders (the verify URL and QR text, the PDF opened and
    checked, what it carries, the stamp or drawing, the hash), not all the steps for one order and then
    for the next: each step's code and data stay in the processor's caches. A batch worker's chunk of 50
    no-stamp rows of the batch benchmark (2.6 KB PDFs), step by step: 865-907 -> 469-503 µs a row (process
    time, chunks alternated with the order-by-order code in one process). The orders' documents are all in
    memory until the call returns: the batch's workers give a group of at most ``GROUP_BYTES`` at a time."""
    from .hashing import sha256
    from .steps import run_steps
    from .urls import verify_url as make_verify_url

    work = [_Work(order, document, name) for order, document, name in items]

    def address(item: _Work) -> None:
        item.url = item.text = make_verify_url(base_url, item.order)
        mismatch = total_mismatch(item.order)
        if mismatch:
            item.warnings.append(f"{item.order.order_number}: {mismatch}")
        if qr_fragment is not None and (stamp or item.document is None):  # only a QR printed here is signed
            from .signed_qr import qr_text

            item.text, unsigned = qr_text(item.url, item.order, qr_fragment)
            if unsigned:
                item.warnings.append(unsigned)

    steps = [address]
    if any(item.document is not None for item in work):  # (pikepdf is loaded only for a PDF)
        from .pdf.checked import open_checked
        from .pdf.checks import check_registrable
        from .pdf.open import CheckedPdf
        from .pdf.stamp import stamp_pdf

        def opened(item: _Work) -> None:
            document = item.document
            if document is not None:
                item.checked = document if isinstance(document, CheckedPdf) else open_checked(
                    document, name=item.name, limits=limits)

        def registrable(item: _Work) -> None:
            if item.checked is not None:
                check_registrable(item.checked, item.url, name=item.name, allow_other_urls=allow_other_urls,
                                  warn=lambda line: item.warnings.append(line.removeprefix("warning: ")))

        def stamped(item: _Work) -> None:
            if item.checked is not None:
                item.data = (stamp_pdf(item.checked, item.text, order=item.order, placement=placement) if stamp
                             else item.checked.data)

        steps += [opened, registrable, stamped]
    if any(item.document is None for item in work):
        from .render import render_order

        def drawn(item: _Work) -> None:
            if item.document is None:
                item.data = render_order(item.order, verify_url=item.text, placement=placement)

        steps.append(drawn)
    try:
        run_steps(work, steps)
    finally:
        for item in work:
            for held in (item.checked, item.document):
                if held is not None and not isinstance(held, bytes):
                    held.close()
    return [item.outcome if item.outcome is not None else
            Prepared(item.order, item.data, sha256(item.data), item.url, item.text, tuple(item.warnings))
            for item in work]


class _Work:
    """One order on its way through :func:`prepare_many`."""

    __slots__ = ("checked", "data", "document", "name", "order", "outcome", "text", "url", "warnings")

    def __init__(self, order: Order, document: bytes | CheckedPdf | None, name: str) -> None:
        self.order, self.document, self.name = order, document, name
        self.url = self.text = ""
        self.warnings: list[str] = []
        self.checked: CheckedPdf | None = None
        self.data = b""
        self.outcome: Exception | None = None


@dataclass(frozen=True)
class Registered:
    """What :func:`register` did: the registration on chain, where the PDF is published and whether an
    earlier run had minted it already (this one finished the job)."""

    registration: Registration
    prepared: Prepared
    document_url: str
    resumed: bool = False
    out: Path | None = None

    def to_json(self) -> dict[str, Any]:
        """The ``register --json`` answer."""
        data = registration_json(self.registration, self.prepared.verify_url, self.document_url,
                                 str(self.out) if self.out is not None else None)
        if self.resumed:
            data["resumed"] = True
        return data


def register(session: Session, prepared: Prepared, *, supersedes: int | None = None,
             out: Path | None = None) -> Registered:
    """Store the prepared PDF, then mint its order (as the correction of token `supersedes` when given).
    With `out`, the stamped PDF is written there before the transaction is sent (a crash while the receipt
    is awaited loses nothing) and removed again when the chain refuses. Running the same registration again
    after a crash finishes it (``resumed``) instead of failing as a duplicate."""
    order, digest = prepared.order, prepared.sha256
    registry = session.registry(write=True)
    session.store.put(prepared.document)
    earlier = registered_before(registry, order, digest, supersedes)
    if out is not None:
        from .store import write_atomic

        try:
            write_atomic(out, prepared.document)
        except OSError as exc:
            raise InvalidInput(f"cannot write --out {str(out)!r}: {exc.strerror}",
                               hint="free some space or choose another --out; nothing was registered") from None
    try:
        registration = earlier or (registry.supersede(supersedes, order, digest) if supersedes is not None
                                   else registry.register(order, digest))
    except PeruComprasError:
        if out is not None:  # refused: a stamped PDF whose order is not on chain would mislead
            out.unlink(missing_ok=True)
        raise
    return Registered(registration, prepared, order.document_url or session.store.url(digest),
                      resumed=earlier is not None, out=out)


def registered_before(registry: Registry, order: Order, digest: bytes, supersedes: int | None) -> Registration | None:
    """The registration of this very order with this very (stamped) PDF, when an earlier run minted it and did
    not finish (killed while waiting for the receipt): running the same command again completes it."""
    from .chain.client import Registration

    state = registry.state(order.token_id)
    if not state.registered or state.document_hash != digest:
        return None
    record = registry.read(order.token_id, state=state)
    if record.order.canonical_bytes() != order.canonical_bytes():
        return None
    receipt = registry.rpc.call("eth_getTransactionReceipt", [record.tx_hash]) or {}
    return Registration(order.token_id, order, digest, record.tx_hash, record.block_number,
                        int(receipt.get("gasUsed", "0x0"), 16), 1, supersedes=supersedes)


def registration_json(reg: Registration, verify_url: str, document_url: str, stamped: str | None) -> dict[str, Any]:
    """One registration as JSON (``register``'s answer; the batch writes the same fields per order)."""
    out: dict[str, Any] = {
        "token_id": token_hex(reg.token_id), "order_number": reg.order.order_number,
        "entity_ruc": reg.order.entity.key, "tx_hash": reg.tx_hash, "block_number": reg.block_number,
        "gas_used": reg.gas_used, "sha256": reg.sha256.hex(), "hashlink": reg.hashlink,
        "document_url": document_url, "verify_url": verify_url, "stamped_pdf": stamped, "tx_orders": reg.tx_orders,
    }
    if reg.supersedes is not None:
        out["supersedes"] = token_hex(reg.supersedes)
    return out


def total_mismatch(order: Order) -> str | None:
    """One line when the order's total differs from the sum of its items (quantity × unit price), or None
    (also when an item has no unit price). Taxes such as IGV may explain a difference, so it is a warning."""
    from decimal import Decimal, InvalidOperation

    try:
        if any(item.unit_price is None for item in order.items):
            return None
        items = sum((Decimal(item.quantity) * Decimal(item.unit_price or 0) for item in order.items), Decimal(0))
        difference = Decimal(order.total_amount) - items
    except InvalidOperation:
        return None
    if difference == 0:
        return None
    return (f"the total {Decimal(order.total_amount):,.2f} {order.currency} differs from the items' sum "
            f"{items:,.2f} by {difference:+,.2f} (taxes may explain it; registered as given)")


def deploy(session: Session) -> tuple[Registry, Receipt]:
    """Deploy a registry whose documents are published at ``<base URL>/d/``; the signer gets the admin,
    registrar and annuller roles, and the session remembers it (a Workspace, in deployment.json)."""
    from .chain.client import Registry
    from .urls import DOCUMENT_PATH

    transactor = session.start_writing()
    registry, receipt = Registry.deploy(transactor, document_base_uri=session.base_url + DOCUMENT_PATH)
    session.remember_deployment(registry, transactor.chain_id)
    return registry, receipt


def annul(session: Session, ref: str, reason: str) -> tuple[int, Receipt]:
    """Mark the order `ref` names void with `reason` (1 to 1,000 bytes, the record's text rules); its token
    stays, its status becomes annulled."""
    from .order import check_text

    reason = check_text(reason.strip(), "--reason", limit=1000)  # no ESC, U+202E, …
    if len(reason.encode()) > 1000:
        raise InvalidInput(f"--reason has {len(reason.encode())} bytes; it needs 1 to 1000",
                           hint="write a short reason")
    registry = session.registry(write=True)
    token_id = resolve(registry, ref)
    return token_id, registry.annul(token_id, reason)


# -- reading -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reference:
    """What a reference names, read without the chain: an order key (and its token id), a token id, a document
    digest, or, for 64 hex digits, both a token id and a digest (a registered token first, else the document)."""

    token_id: int | None = None
    digest: bytes | None = None
    key: str | None = None


def reference(ref: str) -> Reference:
    """TOKEN_ID (decimal or 0x hex), HASH (hl:… or 64 hex) or ENTITY/ORDER_NUMBER (spaces around the ``/``
    of a typed reference are dropped); InvalidInput when it is none of them. :func:`resolve` and the page's
    search both walk this answer (the page through its caches)."""
    from .urls import parse_token, token_id_of_key

    text = ref.strip()
    if text.startswith("hl:"):
        from .hashing import parse_digest

        return Reference(digest=parse_digest(text))
    if "/" in text:
        entity, _, order_number = text.partition("/")
        key = f"{entity.strip()}/{order_number.strip()}"
        return Reference(token_id=token_id_of_key(key), key=key)
    if text.isascii() and text.isdigit():
        number = parse_token(text)
        if number is None:
            raise InvalidInput(f"token id {text[:80]!r} is over 2**256 - 1", hint="give the token id as printed")
        return Reference(token_id=number)
    hexa = text.lower().removeprefix("0x")
    if len(hexa) == 64 and all(c in "0123456789abcdef" for c in hexa):
        return Reference(token_id=int(hexa, 16), digest=bytes.fromhex(hexa))
    token_id = parse_token(text)
    if token_id is None:
        raise InvalidInput(f"{ref!r} is not a token id, document hash or ENTITY/ORDER_NUMBER",
                           hint="e.g. 0x5f…, hl:zQm…, or 20131370998/OC-2026-004512")
    return Reference(token_id=token_id)


def resolve(registry: Registry, ref: str) -> int:
    """A token id from TOKEN_ID (decimal or 0x hex), HASH (hl:… or 64 hex: a registered token id first, else
    the document hash) or ENTITY/ORDER_NUMBER. OrderNotRegistered for a hashlink no order has."""
    named = reference(ref)
    if named.digest is None:
        assert named.token_id is not None
        return named.token_id
    if named.token_id is None:
        found = registry.find_by_hash(named.digest)
        if not found:
            raise OrderNotRegistered(f"no order is registered with document {ref.strip()}")
        return found[0]
    if registry.state(named.token_id).registered:
        return named.token_id
    found = registry.find_by_hash(named.digest)
    return found[0] if found else named.token_id


def claimed_token(registry: Registry, document: bytes | CheckedPdf) -> int | None:
    """The registered token of the order a PDF claims to be (its QR's verify URL, kept in its metadata, link
    and stamp, or decoded from the printed QR), or None. A tampered copy still claims its order."""
    from .pdf.claims import claimed_verify_url
    from .urls import order_key_from_verify_url, token_id_of_key

    url = claimed_verify_url(document)
    key = order_key_from_verify_url(url) if url else None
    if key is None:
        return None
    token_id = token_id_of_key(key)
    return token_id if registry.state(token_id).registered else None


def verify_pdf(registry: Registry, document: bytes | CheckedPdf, *, token_id: int | None = None) -> Verdict:
    """Is `document` (bytes, or a :class:`~peru_compras.pdf.CheckedPdf`: not parsed again) the registered
    original? Against `token_id` when given, else against the order the PDF claims to be (so that an altered
    copy reads ``altered``), else by the file's own hash."""
    from .verify import verify_document

    if token_id is None:
        token_id = claimed_token(registry, document)
    data = document if isinstance(document, bytes) else document.data
    return verify_document(registry, data, token_id=token_id)


def registered_as(registry: Registry, digest: bytes, other_than: int | None) -> OnChainOrder | None:
    """The order this exact file (SHA-256 `digest`) is registered as, when it is not `other_than`."""
    found = [token_id for token_id in registry.find_by_hash(digest) if token_id != other_than]
    return registry.read(found[0]) if found else None


def record_json(record: OnChainOrder, base_url: str) -> dict[str, Any]:
    """An on-chain record as JSON (``show``): the order's fields, then its token, status and registration."""
    from .hashing import hashlink

    out = record.order.to_json()
    out.update(
        token_id=token_hex(record.token_id), status=record.state.status, tx_hash=record.tx_hash,
        block_number=record.block_number, registrar=record.registrar, sha256=record.state.document_hash.hex(),
        hashlink=hashlink(record.state.document_hash), document_url=record.document_url,
        verify_url=base_url.rstrip("/") + record.order.verify_path,
    )
    if record.annul_reason is not None:
        out["annul_reason"] = record.annul_reason
    if record.state.replaced_by:
        out["replaced_by"] = token_hex(record.state.replaced_by)
    if record.state.replaces:
        out["supersedes"] = token_hex(record.state.replaces)
    return out
