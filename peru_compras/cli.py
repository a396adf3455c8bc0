"""The command line: parse, call the library, print. ``--json`` puts only JSON on stdout.

Exit codes: 0 success (verify: authentic); 1 a negative answer or a refusal by the chain; 2 bad input;
3 the node or a service cannot be reached. Errors print one line, never a traceback.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import typer

from .errors import InvalidInput, PeruComprasError

if TYPE_CHECKING:
    from .chain.client import OnChainOrder, Registration, Registry
    from .config import Workspace

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    rich_markup_mode=None,
    help="Register public purchase orders as verifiable records on an EVM chain (LACNet, Besu, Anvil).",
)
roles_app = typer.Typer(no_args_is_help=True, help="Manage registrars and annullers.")
app.add_typer(roles_app, name="roles")

F = TypeVar("F", bound=Callable[..., Any])

# Options that may appear anywhere on the line; main() moves them before the command.
GLOBAL_VALUE_OPTIONS = ("--rpc", "--registry", "--network", "--keystore", "--base-url", "--node-address", "--home",
                        "--trusted-forwarder", "--lacnet-model", "--metatx-hub", "--relayer-keystore")
GLOBAL_FLAGS = ("--json",)


class _State:
    json = False
    command = ""
    flags: dict[str, Any] = {}  # noqa: RUF012 — one process, one command
    workspace: Workspace | None = None


state = _State()


def _workspace() -> Workspace:
    if state.workspace is None:
        from .config import Workspace, load_settings

        state.workspace = Workspace(load_settings(state.flags))
        state.workspace.started_by = f"peru-compras {state.command}"
    return state.workspace


def _err(text: str) -> None:
    from .terminal import safe

    print(safe(text), file=sys.stderr)


def _emit(data: dict[str, Any], human: str) -> None:
    """The command's answer: JSON with --json, else `human`; either way no outside string reaches the
    terminal raw (control, bidi and zero-width characters escaped, see :mod:`.terminal`)."""
    from .terminal import json_line, safe

    print(json_line(data) if state.json else safe(human))


def _fail(exc: PeruComprasError) -> NoReturn:
    _err(f"error: {exc}")
    raise typer.Exit(exc.exit_code)


def _hex(token_id: int | None) -> str | None:
    return None if token_id is None else f"0x{token_id:064x}"


@app.callback()
def _main(
    ctx: typer.Context,
    rpc: str = typer.Option(None, "--rpc", help="Node URL [env PERU_COMPRAS_RPC]."),
    registry: str = typer.Option(None, "--registry", help="Registry contract 0x… [env PERU_COMPRAS_REGISTRY]."),
    network: str = typer.Option(None, "--network", help="local | besu | lacnet-protestnet | lacnet-mainnet."),
    keystore: Path = typer.Option(None, "--keystore", help="V3 JSON keystore of the signer."),
    base_url: str = typer.Option(None, "--base-url", help="Public address of the verification page."),
    node_address: str = typer.Option(None, "--node-address", help="LACNet writer node's address."),
    home: Path = typer.Option(None, "--home", help="State folder (default ./.peru-compras)."),
    trusted_forwarder: str = typer.Option(None, "--trusted-forwarder", help="Trusted forwarder given to a new "
                                          "registry, instead of the profile's [env PERU_COMPRAS_TRUSTED_FORWARDER]."),
    lacnet_model: str = typer.Option(None, "--lacnet-model", help="LACNet's way in: relay (gas model, default) | "
                                     "metatx (ERC-2771 hub) [env PERU_COMPRAS_LACNET_MODEL]."),
    metatx_hub: str = typer.Option(None, "--metatx-hub", help="PermissionedMetaTxHub, instead of the profile's "
                                   "[env PERU_COMPRAS_METATX_HUB]."),
    relayer_keystore: Path = typer.Option(None, "--relayer-keystore", help="V3 JSON keystore of the metatx relayer "
                                          "[password in env PERU_COMPRAS_RELAYER_KEYSTORE_PASSWORD]."),
    as_json: bool = typer.Option(False, "--json", help="Only JSON on stdout."),
) -> None:
    state.json = as_json
    state.command = ctx.invoked_subcommand or ""
    state.flags = {"rpc": rpc, "registry": registry, "network": network, "keystore": keystore,
                   "base_url": base_url, "node_address": node_address, "home": home,
                   "trusted_forwarder": trusted_forwarder, "lacnet_model": lacnet_model, "metatx_hub": metatx_hub,
                   "relayer_keystore": relayer_keystore}


# -- helpers -------------------------------------------------------------------------------------------


def _read_document(path: Path) -> bytes:
    from .pdf import read_pdf

    return read_pdf(path)


def _resolve(registry: Registry, ref: str) -> int:
    """A token id from TOKEN_ID (decimal or 0x hex), HASH (hl:… or 64 hex) or ENTITY/ORDER_NUMBER."""
    from eth_utils.crypto import keccak

    from .errors import OrderNotRegistered
    from .hashing import parse_digest

    text = ref.strip()
    if "/" in text and not text.startswith("hl:"):
        return int.from_bytes(keccak(text.encode()), "big")
    if text.startswith("hl:"):
        found = registry.find_by_hash(parse_digest(text))
        if not found:
            raise OrderNotRegistered(f"no order is registered with document {text}")
        return found[0]
    if text.isdigit():
        return int(text)
    hexa = text.lower().removeprefix("0x")
    if len(hexa) == 64 and all(c in "0123456789abcdef" for c in hexa):
        token_id = int(hexa, 16)
        if registry.state(token_id).registered:
            return token_id
        found = registry.find_by_hash(bytes.fromhex(hexa))
        return found[0] if found else token_id
    raise InvalidInput(f"{ref!r} is not a token id, document hash or ENTITY/ORDER_NUMBER",
                       hint="e.g. 0x5f…, hl:zQm…, or 20131370998/OC-2026-004512")


def _record_json(record: OnChainOrder) -> dict[str, Any]:
    from .hashing import hashlink

    out = record.order.to_json()
    out.update(
        token_id=_hex(record.token_id), status=record.state.status, tx_hash=record.tx_hash,
        block_number=record.block_number, registrar=record.registrar, sha256=record.state.document_hash.hex(),
        hashlink=hashlink(record.state.document_hash), document_url=record.document_url,
        verify_url=_workspace().settings.base_url + record.order.verify_path,
    )
    if record.annul_reason is not None:
        out["annul_reason"] = record.annul_reason
    if record.state.replaced_by:
        out["replaced_by"] = _hex(record.state.replaced_by)
    if record.state.replaces:
        out["supersedes"] = _hex(record.state.replaces)
    return out


def _registration_json(reg: Registration, verify_url: str, document_url: str, stamped: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "token_id": _hex(reg.token_id), "order_number": reg.order.order_number, "entity_ruc": reg.order.entity.key,
        "tx_hash": reg.tx_hash, "block_number": reg.block_number, "gas_used": reg.gas_used,
        "sha256": reg.sha256.hex(), "hashlink": reg.hashlink, "document_url": document_url,
        "verify_url": verify_url, "stamped_pdf": stamped, "tx_orders": reg.tx_orders,
    }
    if reg.supersedes is not None:
        out["supersedes"] = _hex(reg.supersedes)
    return out


# -- commands ------------------------------------------------------------------------------------------


@app.command()
def node(port: int = typer.Option(8545, min=1, max=65535, help="Loopback port to listen on.")) -> None:
    """Run this folder's local chain (Anvil) in the foreground until Ctrl-C; its state persists under
    ./.peru-compras. One folder has one chain: when it already runs (say, started by `demo`), this says
    where and exits 1 (`peru-compras stop` ends it).

    Example:
        peru-compras node --port 8545
    """
    from .chain.node import ChainInfo

    def ready(info: ChainInfo) -> None:
        _emit({"rpc": info.rpc, "chain_id": info.chain_id}, f"local chain running at {info.rpc} "
              f"(chain id {info.chain_id}); Ctrl-C stops it")
        sys.stdout.flush()

    ws = _workspace()
    ws.chain.run(port=port, started_by="peru-compras node", ready=ready)


@app.command()
def deploy() -> None:
    """Deploy the registry; the signer gets the admin, registrar and annuller roles. This folder then uses
    it (`.peru-compras/deployment.json` keeps it per chain). Without a key, the embedded signer signs, on
    this folder's own local chain only (no --rpc, or --rpc naming it).

    Example:
        peru-compras deploy --rpc http://127.0.0.1:8545
    """
    from .chain.client import Registry

    ws = _workspace()
    registry, receipt = Registry.deploy(ws.start_writing(), document_base_uri=ws.settings.base_url + "/d/")
    chain_id = ws.transactor.chain_id
    ws.remember_deployment(registry, chain_id)
    _emit({"registry": registry.address, "chain_id": chain_id, "tx_hash": receipt.tx_hash,
           "block_number": receipt.block_number, "gas_used": receipt.gas_used},
          f"registry deployed at {registry.address} (chain {chain_id}, block {receipt.block_number}, "
          f"{receipt.gas_used:,} gas)")


def total_mismatch(order: Any) -> str | None:
    """One line when the order's total differs from the sum of its items (quantity × unit price), or None
    (also when an item has no unit price). Taxes such as IGV may explain a difference, so it is a warning."""
    from decimal import Decimal, InvalidOperation

    try:
        if any(item.unit_price is None for item in order.items):
            return None
        items = sum((Decimal(item.quantity) * Decimal(item.unit_price) for item in order.items), Decimal(0))
        difference = Decimal(order.total_amount) - items
    except InvalidOperation:
        return None
    if difference == 0:
        return None
    return (f"the total {Decimal(order.total_amount):,.2f} {order.currency} differs from the items' sum "
            f"{items:,.2f} by {difference:+,.2f} (taxes may explain it; registered as given)")


def register_order(ws: Workspace, order_path: Path, pdf_path: Path, *, out: Path | None = None,
                   supersedes: str | None = None, stamp: bool = True,
                   placement: str = "bottom-right", allow_other_urls: bool = False) -> dict[str, Any]:
    """Validate, stamp, store and mint one order; returns the `register` JSON fields."""
    from .order import load_order
    from .pdf import check_registrable, stamp_pdf

    order = load_order(order_path)
    document = _read_document(pdf_path)
    verify_url = ws.verify_url(order.verify_path)
    mismatch = total_mismatch(order)
    if mismatch:
        _err(f"warning: {order.order_number}: {mismatch}")
    registry = ws.registry(write=True)
    old = _resolve(registry, supersedes) if supersedes else None
    check_registrable(document, verify_url, name=str(pdf_path), allow_other_urls=allow_other_urls, warn=_err)
    if stamp:
        document = stamp_pdf(document, verify_url, order=order, placement=placement, name=str(pdf_path))
    from .hashing import sha256

    digest = sha256(document)
    ws.store.put(document)
    earlier = _registered_before(registry, order, digest, old)
    if out is not None:  # before sending: a crash while the receipt is awaited must not lose the stamped PDF
        from .store import write_atomic

        try:
            write_atomic(out, document)
        except OSError as exc:
            raise InvalidInput(f"cannot write --out {str(out)!r}: {exc.strerror}",
                               hint="free some space or choose another --out; nothing was registered") from None
    try:
        reg = earlier or (registry.supersede(old, order, digest) if old is not None
                          else registry.register(order, digest))
    except PeruComprasError:
        if out is not None:  # refused: a stamped PDF whose order is not on chain would mislead
            out.unlink(missing_ok=True)
        raise
    document_url = order.document_url or ws.store.url(digest)
    data = _registration_json(reg, verify_url, document_url, str(out) if out else None)
    if earlier is not None:
        data["resumed"] = True  # an earlier run minted it (then stopped): this one finished the job
        _err(f"{order.order_number} was already registered by an earlier run with this same PDF: finishing it")
    return data


def _registered_before(registry: Registry, order: Any, digest: bytes, supersedes: int | None) -> Registration | None:
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


@app.command()
def register(
    order: Path = typer.Argument(..., help="The order record (JSON)."),
    pdf: Path = typer.Argument(..., help="The order's PDF."),
    out: Path = typer.Option(None, "--out", help="Write the stamped PDF here."),
    supersedes: str = typer.Option(None, "--supersedes", help="Token this corrected order replaces."),
    no_stamp: bool = typer.Option(False, "--no-stamp", help="Hash the PDF as it is (it already has its QR)."),
    stamp_at: str = typer.Option("bottom-right", "--stamp-at", help="Where the QR goes: bottom-right, "
                                 "bottom-left, top-right, top-left (page 1) or last-page (an added page)."),
    allow_other_urls: bool = typer.Option(False, "--allow-other-urls", help="Register even though the PDF "
                                          "carries a link or QR for another address (each printed as a warning)."),
) -> None:
    """Validate an order, stamp its QR on the PDF, store the PDF and mint the order's token.

    Example:
        peru-compras register orden.json orden.pdf --out orden-sellada.pdf
    """
    data = register_order(_workspace(), order, pdf, out=out, supersedes=supersedes, stamp=not no_stamp,
                          placement=stamp_at, allow_other_urls=allow_other_urls)
    _emit(data, f"registered {data['order_number']} as token {data['token_id']}\n"
                f"  tx {data['tx_hash']} (block {data['block_number']}, {data['gas_used']:,} gas)\n"
                f"  {data['hashlink']}\n  verify at {data['verify_url']}")


@app.command("register-batch")
def register_batch(
    manifest: Path = typer.Argument(..., help="JSON Lines or CSV manifest (each row names its PDF in `pdf`), or "
                                    "OCDS: a release or record package, or JSON Lines of releases."),
    pdf_dir: Path = typer.Option(None, "--pdf-dir", help="Folder the `pdf` paths are relative to; for OCDS, the "
                                 "folder of <order number>.pdf files (absent ones are drawn by render)."),
    batch_size: int = typer.Option(100, "--batch-size", help="Orders per transaction (1-500)."),
    no_stamp: bool = typer.Option(False, "--no-stamp", help="PDFs already carry their QR: hash them as they are."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print each order's record (or why it is refused) as a "
                                 "JSON line; send, store and journal nothing."),
) -> None:
    """Register many orders, resumably: run the same command again after any crash and nothing is lost or
    doubled. One JSON line per order on stdout (with --json), a progress bar on stderr, a summary last.
    An OCDS manifest gives one order per contract (or award without one) with items; every release is
    registered or reported on its own line with the reason.

    Example:
        peru-compras register-batch ordenes.jsonl --pdf-dir pdfs/ --batch-size 100 --json
        peru-compras register-batch ocds-release-package.json --pdf-dir pdfs/ --dry-run
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from .batch import BatchRegistrar, Row, count_rows, manifest_kind, preview, read_manifest
    from .terminal import json_line

    if not manifest.is_file():
        raise InvalidInput(f"cannot read manifest {str(manifest)!r}", hint="check the path")
    if not 1 <= batch_size <= 500:
        raise InvalidInput(f"--batch-size {batch_size} is out of range", hint="use 1 to 500 orders per transaction")
    ws = _workspace()

    def emit(line: dict[str, Any]) -> None:
        if state.json or dry_run:
            print(json_line(line), flush=False)
        elif "error" in line:
            _err(f"row {line.get('row')}: {line.get('order_number') or '?'}: {line['error']}")
        elif line.get("status") == "skipped":
            _err(f"row {line.get('row')}: skipped: {line.get('reason')}")

    rows: Any = read_manifest(manifest, pdf_dir=pdf_dir)
    if manifest_kind(manifest) == "ocds":  # read whole anyway: map it now, so a broken package stops here
        listed: list[Row] = list(rows)
        rows, total = iter(listed), len(listed)
    else:
        total = count_rows(manifest)
    if dry_run:
        summary = preview(rows, base_url=ws.settings.base_url, emit=emit)
        sys.stdout.flush()
        _emit(summary.to_json(), f"would register {summary.would_register}, refused {summary.failed}, "
                                 f"skipped {summary.skipped} (dry run: nothing sent)")
        if summary.failed:
            raise typer.Exit(1)
        return

    columns = (TextColumn("registering"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[rate]:.0f} orders/s"), TimeRemainingColumn())
    from rich.console import Console

    with Progress(*columns, console=Console(stderr=True), transient=False) as progress:
        task = progress.add_task("orders", total=total, rate=0.0)
        started = time.monotonic()

        def advance(n: int) -> None:
            progress.advance(task, n)
            done = progress.tasks[0].completed
            progress.update(task, rate=done / max(time.monotonic() - started, 1e-6))

        registrar = BatchRegistrar(ws, batch_size=batch_size, stamp=not no_stamp, emit=emit, progress=advance)
        summary = registrar.run(rows)
    sys.stdout.flush()
    skipped = f", skipped {summary.skipped}" if summary.ocds else ""
    _emit(summary.to_json(), f"registered {summary.registered}, already registered {summary.already_registered}, "
                             f"failed {summary.failed}{skipped}")
    if summary.failed:
        raise typer.Exit(1)


@app.command("export-ocds")
def export_ocds(
    out: Path = typer.Option(Path("release-package.json"), "--out",
                             help="Write the package here ('-': stdout)."),
    ocid_prefix: str = typer.Option(None, "--ocid-prefix", help="Your registered OCID prefix [default: "
                                    "ocds-pecomp, not registered]."),
    publisher: str = typer.Option(None, "--publisher", help="Publisher name in the package."),
) -> None:
    """Write the registered orders as an OCDS 1.1 release package: one release per order, read from the chain,
    with its PDF as a contract document (URL, application/pdf, SHA-256) and its registration (chain id,
    registry, token id, transaction, block) in the `chainRegistration` extension.

    Example:
        peru-compras export-ocds --out compras-ocds.json
    """
    from .errors import UnreadableRecord
    from .ocds import OCID_PREFIX, dumps, export_package
    from .store import write_atomic

    ws = _workspace()
    skipped: list[str] = []

    def unreadable(exc: UnreadableRecord) -> None:  # one line each; the other orders are still exported
        skipped.append(_hex(exc.token_id) or "")
        _err(f"skipped: {exc}")

    package = export_package(ws.registry(), base_url=ws.settings.base_url, ocid_prefix=ocid_prefix or OCID_PREFIX,
                             publisher=publisher, unreadable=unreadable)
    text = dumps(package) + "\n"
    count = len(package["releases"])
    left_out = f"; {len(skipped)} unreadable on-chain record(s) left out" if skipped else ""
    if str(out) == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        _err(f"{count} releases written to stdout{left_out}")
    else:
        write_atomic(out, text.encode())
        _emit({"releases": count, "file": str(out), "unreadable": skipped},
              f"{count} releases (one per registered order) written to {out}{left_out}")
    if skipped:
        raise typer.Exit(1)


@app.command()
def show(ref: str = typer.Argument(..., metavar="TOKEN_ID|HASH|ENTITY_RUC/ORDER_NUMBER")) -> None:
    """Show an order's on-chain record and status.

    Example:
        peru-compras show 20131370998/OC-2026-004512
    """
    registry = _workspace().registry()
    record = registry.read(_resolve(registry, ref))
    data = _record_json(record)
    human = [f"Orden {record.order.order_number} — {record.order.entity.name} ({record.order.entity.key})",
             f"  status: {record.state.status}" + (f" ({record.annul_reason})" if record.annul_reason else ""),
             f"  token {data['token_id']}", f"  tx {record.tx_hash} (block {record.block_number})",
             f"  registrar {record.registrar}", f"  document {data['hashlink']}", f"  {record.document_url}"]
    if record.state.replaced_by:
        human.insert(2, f"  replaced by {registry.read(record.state.replaced_by).order.order_number} "
                        f"(token {data['replaced_by']})")
    _emit(data, "\n".join(human))


@app.command()
def verify(
    pdf: Path = typer.Argument(None, help="The PDF in hand (optional with --fetch and --token or --order-number)."),
    token: str = typer.Option(None, "--token", help="Check against this token."),
    order_number: str = typer.Option(None, "--order-number", help="Check against this order number…"),
    entity: str = typer.Option(None, "--entity", help="…of this entity (RUC)."),
    fetch: bool = typer.Option(False, "--fetch", help="Also download the registered document_url and check "
                               "that the published PDF is still the original."),
    fetch_host: list[str] = typer.Option(None, "--fetch-host", help="Allow --fetch to download from this host "
                                         "too (repeatable) [env PERU_COMPRAS_FETCH_HOSTS]."),
) -> None:
    """Is this PDF the registered original? Exit 0 only when authentic.

    The order is found from the PDF itself (the QR's verify URL, kept in its metadata, link and stamp, or
    decoded from the printed QR), else by --token or --order-number/--entity, else by the file's hash.
    With --fetch the published copy is downloaded too (allowed hosts only, size and time limits): exit 1
    when it is not the original, 2 when the settings forbid the download, 3 when it cannot be reached.

    Example:
        peru-compras verify orden-sellada.pdf --fetch
    """
    from .pdf import claimed_order_key
    from .verify import verify_document

    if (order_number is None) != (entity is None):
        raise InvalidInput("--order-number and --entity go together", hint="give both, or --token, or neither")
    if pdf is None:
        if not fetch or not (token or order_number):
            raise InvalidInput("verify needs the PDF",
                               hint="give PDF, or --fetch with --token or --order-number/--entity")
        _verify_published_only(token or f"{entity}/{order_number}", fetch_host or [])
        return
    document = _read_document(pdf)
    registry = _workspace().registry()
    token_id = None
    if token:
        token_id = _resolve(registry, token)
    elif order_number and entity:
        token_id = _resolve(registry, f"{entity}/{order_number}")
    else:
        key = claimed_order_key(document)
        if key is not None:
            claimed = _resolve(registry, key)
            token_id = claimed if registry.state(claimed).registered else None
    verdict = verify_document(registry, document, token_id=token_id)
    data = verdict.to_json()
    data["token_id"] = _hex(verdict.token_id)
    words = {
        "authentic": "AUTHENTIC: this is the registered original",
        "altered": "ALTERED: this file is not the registered document",
        "not_registered": "NOT REGISTERED: no order on chain matches this file",
        "annulled": "ANNULLED: the order was registered and then annulled",
        "superseded": "SUPERSEDED: a corrected order replaced this one",
    }
    lines = [words[verdict.status], f"  sha256   {data['sha256']}"]
    if verdict.expected_sha256 and verdict.expected_sha256 != verdict.sha256:
        lines.append(f"  expected {data['expected_sha256']}")
    if verdict.record is not None:
        lines.append(f"  order {verdict.record.order.order_number} of {verdict.record.order.entity.name} "
                     f"(token {data['token_id']})")
        if verdict.record.annul_reason:
            lines.append(f"  reason: {verdict.record.annul_reason}")
        if verdict.record.state.replaced_by:
            replacement = registry.read(verdict.record.state.replaced_by).order.order_number
            data["replaced_by_order_number"] = replacement
            lines.append(f"  replaced by {replacement} (token {_hex(verdict.record.state.replaced_by)})")
    if verdict.status in ("not_registered", "altered") and (token or order_number):
        registered_as = _registered_as(registry, verdict.sha256, verdict.token_id)
        if registered_as is not None:  # the file is on chain, as another order than the one asked about
            data["registered_as"] = {"order_number": registered_as.order.order_number,
                                     "entity": registered_as.order.entity.key,
                                     "token_id": _hex(registered_as.token_id), "status": registered_as.state.status}
            asked = token or f"{entity}/{order_number}"
            lines[0] = (f"{words[verdict.status].split(':')[0]}: this file is not {asked}; it is registered as "
                        f"{registered_as.order.order_number} of {registered_as.order.entity.key} "
                        f"({registered_as.state.status}, token {_hex(registered_as.token_id)})")
    code = 0 if verdict.authentic else 1
    if fetch and verdict.token_id is not None:
        published = _check_published(registry, verdict.token_id, fetch_host or [])
        data["published"] = published.to_json()
        lines.append(published.human())
        code = published.exit_code if published.exit_code > 1 else max(code, published.exit_code)
    elif fetch:
        data["published"] = None
        lines.append("  published: nothing to fetch (no registered order matches this file)")
    _emit(data, "\n".join(lines))
    if code:
        raise typer.Exit(code)


def _registered_as(registry: Registry, digest: bytes, other_than: int | None) -> OnChainOrder | None:
    """The order this exact file is registered as, when it is not `other_than`."""
    found = [token_id for token_id in registry.find_by_hash(digest) if token_id != other_than]
    return registry.read(found[0]) if found else None


def _check_published(registry: Registry, token_id: int, hosts: list[str]) -> Any:
    """`verify --fetch`: the published copy of `token_id` against its on-chain hash."""
    from .fetch import FetchPolicy, check_published

    record = registry.read(token_id)
    policy = FetchPolicy.from_env(_workspace().settings.base_url, hosts)
    published = check_published(record.document_url, record.state.document_hash, policy)
    if published.exit_code > 1 and published.detail and state.json:  # else human() shows it
        _err(f"error: {published.detail}")
    return published


def _verify_published_only(ref: str, hosts: list[str]) -> None:
    """`verify --fetch --token …` without a PDF in hand: is the published copy the original?"""
    registry = _workspace().registry()
    token_id = _resolve(registry, ref)
    record = registry.read(token_id)
    published = _check_published(registry, token_id, hosts)
    data = {"token_id": _hex(token_id), "status": record.state.status, "order_number": record.order.order_number,
            "entity": record.order.entity.key, "expected_sha256": record.state.document_hash.hex(),
            "published": published.to_json()}
    _emit(data, f"order {record.order.order_number} of {record.order.entity.name} (token {_hex(token_id)}): "
                f"{record.state.status}\n{published.human()}")
    if published.exit_code:
        raise typer.Exit(published.exit_code)


def _default_name(number: str, suffix: str) -> Path:
    import re

    return Path(re.sub(r"[^A-Za-z0-9._-]+", "_", number).strip("._") + suffix)


@app.command("qr")
def qr_command(
    order: Path = typer.Argument(..., help="The order record (JSON)."),
    fmt: str = typer.Option(None, "--format", help="svg | png [default: from --out's suffix, else svg]."),
    out: Path = typer.Option(None, "--out", help="Write it here [default: qr-<order number>.<format>]."),
    scale: int = typer.Option(None, "--scale", min=1, max=100, help="Pixels (PNG) or units (SVG) per module."),
) -> None:
    """Write the order's QR (it encodes its verify URL, known before minting) for PDF templates of your own;
    then `register --no-stamp` hashes the PDF as it is.

    Example:
        peru-compras qr orden.json --format png --out qr.png
    """
    from . import qr as qrcode
    from .order import load_order
    from .store import write_atomic

    record = load_order(order)
    kind = (fmt or (out.suffix.lstrip(".") if out is not None and out.suffix else "svg")).lower()
    if kind not in ("svg", "png"):
        raise InvalidInput(f"--format {kind!r} is not svg or png", hint="use --format svg or --format png")
    verify_url = _workspace().verify_url(record.verify_path)
    data = qrcode.svg(verify_url, scale=scale or 4) if kind == "svg" else qrcode.png(verify_url, scale=scale or 10)
    target = out or _default_name("qr-" + record.order_number, "." + kind)
    write_atomic(target, data)
    _emit({"verify_url": verify_url, "file": str(target), "format": kind},
          f"QR of {record.order_number} ({verify_url}) written to {target}")


@app.command()
def render(
    order: Path = typer.Argument(..., help="The order record (JSON)."),
    out: Path = typer.Option(None, "--out", help="Write the PDF here [default: <order number>.pdf]."),
    stamp_at: str = typer.Option("bottom-right", "--stamp-at", help="Where the QR goes (as for register)."),
) -> None:
    """Draw a standard Spanish purchase-order PDF for a record that comes without one, its QR printed on it.

    Example:
        peru-compras render orden.json --out orden.pdf
    """
    from .order import load_order
    from .render import render_order
    from .store import write_atomic

    record = load_order(order)
    verify_url = _workspace().verify_url(record.verify_path)
    document = render_order(record, verify_url=verify_url, placement=stamp_at)
    target = out or _default_name(record.order_number, ".pdf")
    write_atomic(target, document)
    _emit({"file": str(target), "verify_url": verify_url, "bytes": len(document)},
          f"order {record.order_number} drawn to {target} (QR: {verify_url})")


@app.command()
def annul(
    ref: str = typer.Argument(..., metavar="TOKEN_ID|ENTITY_RUC/ORDER_NUMBER"),
    reason: str = typer.Option(..., "--reason", help="Why (1 to 1,000 bytes; kept on chain)."),
) -> None:
    """Mark an order void with a reason; its token stays, its status becomes annulled.

    Example:
        peru-compras annul 20131370998/OC-2026-004512 --reason "Error en el monto"
    """
    from .order import check_text

    reason = check_text(reason.strip(), "--reason", limit=1000)  # the record's text rules (no ESC, U+202E, …)
    if len(reason.encode()) > 1000:
        raise InvalidInput(f"--reason has {len(reason.encode())} bytes; it needs 1 to 1000",
                           hint="write a short reason")
    registry = _workspace().registry(write=True)
    token_id = _resolve(registry, ref)
    receipt = registry.annul(token_id, reason)
    _emit({"tx_hash": receipt.tx_hash, "status": "annulled", "token_id": _hex(token_id),
           "block_number": receipt.block_number}, f"token {_hex(token_id)} annulled (tx {receipt.tx_hash})")


@roles_app.command("grant")
def roles_grant(role: str = typer.Argument(..., help="registrar | annuller | admin"),
                account: str = typer.Argument(..., help="0x address")) -> None:
    """Give ROLE to ACCOUNT (needs the admin role).

    Example:
        peru-compras roles grant registrar 0x1234…
    """
    receipt = _workspace().registry(write=True).grant(role, account)
    _emit({"tx_hash": receipt.tx_hash, "role": role, "account": account, "granted": True},
          f"{role} granted to {account} (tx {receipt.tx_hash})")


@roles_app.command("revoke")
def roles_revoke(role: str = typer.Argument(..., help="registrar | annuller | admin"),
                 account: str = typer.Argument(..., help="0x address")) -> None:
    """Take ROLE from ACCOUNT (needs the admin role).

    Example:
        peru-compras roles revoke registrar 0x1234…
    """
    receipt = _workspace().registry(write=True).revoke(role, account)
    _emit({"tx_hash": receipt.tx_hash, "role": role, "account": account, "granted": False},
          f"{role} revoked from {account} (tx {receipt.tx_hash})")


@roles_app.command("list")
def roles_list() -> None:
    """List who holds each role now.

    Example:
        peru-compras roles list
    """
    from .chain.contract import ROLE_NAMES

    registry = _workspace().registry()
    data = {role: registry.members(role) for role in ROLE_NAMES}
    _emit(data, "\n".join(f"{role}: {', '.join(members) or '—'}" for role, members in data.items()))


@app.command()
def demo() -> None:
    """The main job on the embedded default: local chain, deploy, register the sample orders with their QR,
    verify an authentic and an altered copy, and print where to look.

    Example:
        peru-compras demo
    """
    from .demo import run_demo

    run_demo(_workspace(), json_output=state.json)


@app.command()
def serve(
    host: str = typer.Option(None, "--host", help="Address to listen on [default 127.0.0.1]."),
    port: int = typer.Option(None, "--port", min=1, max=65535,
                             help="Port [default: the base URL's port on loopback, else 8000]."),
) -> None:
    """Serve the verification page (the order pages the QR codes open, search, JSON API) until Ctrl-C.

    Example:
        peru-compras serve --host 0.0.0.0 --port 8000
    """
    import contextlib
    from urllib.parse import urlsplit

    from .chain.node import port_in_use
    from .errors import NodeUnavailable
    from .web.server import LOOPBACK, default_address
    from .web.server import serve as run_server

    ws = _workspace()
    base_url = ws.settings.base_url
    default_host, default_port = default_address(base_url)
    host, port = host or default_host, port or default_port
    if port_in_use(host, port):
        page = ws.page_server()
        who = (f" by this folder's page server (pid {page['pid']})" if page and page.get("port") == port
               else " by another program")
        raise NodeUnavailable(f"port {port} on {host} is already in use{who}",
                              hint="stop it (`peru-compras stop` ends this folder's) or pick another with --port")
    running = ws.page_server()
    if running is not None and int(running["pid"]) != os.getpid():
        raise NodeUnavailable(f"this folder's page server already runs at {running.get('url')} (pid {running['pid']})",
                              hint="use it, or end it with `peru-compras stop`")
    if urlsplit(base_url).hostname in LOOPBACK and port != default_port:
        _err(f"warning: the QR codes point to {base_url}, not to this server (port {port}): serve on port "
             f"{default_port}, or register with --base-url http://127.0.0.1:{port}")
    record = ws.home / "web.json"  # so that `status` shows it and `stop` ends it
    shown = f"[{host}]" if ":" in host else host
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps({"url": f"http://{shown}:{port}", "pid": os.getpid(), "host": host,
                                  "port": port}) + "\n")
    try:
        run_server(ws, host=host, port=port)
    finally:
        with contextlib.suppress(OSError, ValueError):
            if json.loads(record.read_text()).get("pid") == os.getpid():
                record.unlink()


@app.command()
def status() -> None:
    """Show what runs for this folder: its local chain (pid, port, block) and the background page server.

    Example:
        peru-compras status
    """
    ws = _workspace()
    chain = ws.chain.running()
    page = ws.page_server()
    data: dict[str, Any] = {"running": chain is not None, "rpc": chain.rpc if chain else None,
                            "page": page.get("url") if page else None, "chain": None, "page_server": None,
                            "state_file": str(ws.chain.state_file)}
    lines = []
    if chain is not None:
        from .chain.rpc import Rpc

        block: int | None
        try:
            block = int(Rpc(chain.rpc, timeout=2.0, attempts=1).call("eth_blockNumber"), 16)
        except PeruComprasError:
            block = None
        data["chain"] = {**chain.to_json(), "block": block}
        lines.append(f"local chain: running at {chain.rpc} (pid {chain.pid}, Anvil pid {chain.anvil_pid}, chain id "
                     f"{chain.chain_id}, block {block if block is not None else '?'}; started by {chain.started_by})")
        try:
            remembered = json.loads(ws.deployment_file.read_text()).get(str(chain.chain_id)) or {}
        except (OSError, ValueError):
            remembered = {}
        if remembered.get("registry"):
            data["registry"] = remembered["registry"]
            lines.append(f"registry: {remembered['registry']} (the one this folder uses on chain {chain.chain_id})")
    else:
        kept = f"its state is kept in {ws.chain.state_file}" if ws.chain.state_file.exists() else "nothing started here"
        lines.append(f"local chain: not running ({kept})")
    if page is not None:
        data["page_server"] = page
        lines.append(f"page server: running at {page.get('url')} (pid {page['pid']})")
    else:
        lines.append("page server: not running")
    if chain is not None or page is not None:
        lines.append("`peru-compras stop` ends them")
    _emit(data, "\n".join(lines))


@app.command()
def stop() -> None:
    """End what runs in the background for this folder: the page server and the local chain (its state is
    saved first and kept; the next command that writes starts it again).

    Example:
        peru-compras stop
    """
    ws = _workspace()
    stopped: list[str] = []
    page = ws.stop_page_server()
    if page is not None:
        stopped.append(f"the page server (pid {page['pid']})")
    chain = ws.chain.stop()
    if chain is not None:
        stopped.append(f"the local chain (pid {chain.pid}, Anvil pid {chain.anvil_pid}; its state is kept in "
                       f"{ws.chain.state_file})")
    _emit({"running": False, "rpc": chain.rpc if chain else None, "page": page.get("url") if page else None,
           "stopped_chain": chain.to_json() if chain else None, "stopped_page": page},
          "stopped " + " and ".join(stopped) if stopped else "nothing was running for this folder")


# -- the signed QR, offline (H7: the logic is in qr_check.py, signed_qr.py and trust.py) ---------------


@app.command("verify-qr")
def verify_qr_command(
    text_or_image: str = typer.Argument(..., metavar="TEXT_OR_IMAGE", help="The QR's text, or a PNG/JPEG photo of "
                                        "the paper."),
    trust: Path = typer.Option(None, "--trust", help="Trust pack file (from `trust-pack`): check offline. Without "
                               "it, the pack is read from the chain now."),
) -> None:
    """Check a QR's signed facts offline and print them to compare with the paper. Exit 0 only when it is signed
    by a current registrar, points to the registry's page, and the order is neither annulled nor superseded as
    of the pack's block.

    Example:
        peru-compras verify-qr foto-orden.jpg --trust pack.json
    """
    from .qr_check import check, describe, pack_for
    from .signed_qr import url_host

    registry = None
    hosts: tuple[str, ...] = ()
    if trust is None:
        ws = _workspace()
        registry, hosts = ws.registry(), tuple(filter(None, [url_host(ws.settings.base_url)]))
    verdict = check(text_or_image, pack_for(trust, registry, hosts))
    _emit(verdict.to_json(), describe(verdict))
    if not verdict.ok:
        raise typer.Exit(1)


@app.command("trust-pack")
def trust_pack_command(
    out: Path = typer.Option(Path("trust-pack.json"), "--out", help="Write the pack here."),
    block: int = typer.Option(None, "--block", min=0, help="As of this block [default: the latest]."),
) -> None:
    """Write what offline QR checks need, read from the chain alone as of one block: the registry, chain id,
    the page's host(s), every registrar (with the blocks it held the role) and the annulled and superseded
    token ids.

    Example:
        peru-compras trust-pack --out pack.json
    """
    from .qr_check import write_pack
    from .signed_qr import url_host

    ws = _workspace()
    pack = write_pack(ws.registry(), out, hosts=tuple(filter(None, [url_host(ws.settings.base_url)])), block=block)
    current = sum(1 for period in pack.registrars if period.until_block is None)
    _emit({"file": str(out), "block": pack.block, "registrars": [period.to_json() for period in pack.registrars]},
          f"trust pack written to {out} as of block {pack.block} ({pack.time}): {current} registrar(s), "
          f"{len(pack.annulled)} annulled, {len(pack.superseded)} superseded")


GLOBAL_HELP = ("Settings, before or after the command: " + ", ".join((*GLOBAL_FLAGS, *GLOBAL_VALUE_OPTIONS))
               + "; see `peru-compras --help`.")
for _typer in (app, roles_app):
    for _command in _typer.registered_commands:
        _command.epilog = _command.epilog or GLOBAL_HELP


# -- entry point ---------------------------------------------------------------------------------------


def _hoist_global_options(argv: list[str]) -> list[str]:
    """Let settings and --json appear after the command too (`peru-compras show X --json`)."""
    front: list[str] = []
    rest: list[str] = []
    index = 0
    while index < len(argv):
        arg = argv[index]
        if arg == "--":
            rest += argv[index:]
            break
        name = arg.split("=", 1)[0]
        if name in GLOBAL_FLAGS:
            front.append(arg)
        elif name in GLOBAL_VALUE_OPTIONS:
            if "=" in arg:
                front.append(arg)
            elif index + 1 < len(argv):
                front += [arg, argv[index + 1]]
                index += 1
            else:
                rest.append(arg)
        else:
            rest.append(arg)
        index += 1
    return front + rest


def main(argv: list[str] | None = None) -> None:
    """Console entry point: library errors become one line and their exit code."""
    args = _hoist_global_options(list(sys.argv[1:] if argv is None else argv))
    state.workspace = None
    state.json = False
    try:
        # In non-standalone mode click returns typer.Exit's code instead of raising it.
        code = app(args=args, prog_name="peru-compras", standalone_mode=False)
    except PeruComprasError as exc:
        _err(f"error: {exc}")
        sys.exit(exc.exit_code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        _err("interrupted")
        sys.exit(130)
    except typer.Abort:
        _err("aborted")
        sys.exit(1)
    except Exception as exc:  # noqa: BLE001 — usage errors and anything unexpected: one line
        from typer.exceptions import TyperException

        if isinstance(exc, TyperException):
            ctx = getattr(exc, "ctx", None)
            command = ctx.command_path if ctx is not None and ctx.command_path else "peru-compras"
            _err(f"error: {exc.format_message()} — see `{command} --help`")
            sys.exit(2)
        if os.environ.get("PERU_COMPRAS_DEBUG"):
            raise
        _err(f"internal error: {type(exc).__name__}: {exc} — set PERU_COMPRAS_DEBUG=1 for details and report it")
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)
