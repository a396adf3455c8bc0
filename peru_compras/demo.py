"""`peru-compras demo`: the whole job on the embedded default, end to end.

Starts (or reuses) the local chain, deploys the registry once, registers the bundled sample orders with
their QR printed, verifies an authentic copy and an altered one, and serves the verification page (in the
background, like the chain) whose URL it prints. Running it again registers nothing
twice: orders already on chain are read back and their stored originals reused.
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import service
from .errors import ConfigurationError
from .hashing import hashlink, sha256
from .order import Item, Order, parse_order
from .render import render_order
from .store import write_atomic
from .urls import token_hex
from .urls import verify_url as make_verify_url

if TYPE_CHECKING:
    from .chain.client import Registry
    from .workspace import Workspace


def sample_orders() -> list[Order]:
    """The bundled sample orders."""
    folder = resources.files("peru_compras").joinpath("samples")
    files = sorted(entry.name for entry in folder.iterdir() if entry.name.endswith(".json"))
    return [parse_order(json.loads(folder.joinpath(name).read_text(encoding="utf-8")), source=name)
            for name in files]


def altered_copy(order: Order, verify_url: str) -> bytes:
    """A forged copy: same order, same printed QR, one unit price raised by 10 % (still a valid PDF)."""
    first = order.items[0]
    price = first.unit_price or "1"
    forged = Item(first.description, first.quantity, first.unit, f"{float(price) * 1.1:.2f}", first.cubso)
    return render_order(replace(order, items=(forged, *order.items[1:])), verify_url=verify_url)


def _shown(path: Path) -> Path:
    """`path` relative to the working folder when it is inside it (as the user typed it)."""
    try:
        return path.relative_to(Path.cwd())
    except ValueError:
        return path


def _say(text: str) -> None:
    print(text, file=sys.stderr)


def _page_server(ws: Workspace, registry: Registry, verify_path: str) -> str | None:
    """The page at the base URL, serving this registry: the running one reused when it does, else started
    (after stopping one that serves another registry or address). None, with a warning, when the base
    URL's port is taken by another program: the QR codes would open a page that is not this folder's."""
    from .chain.node import port_in_use
    from .web.server import default_address, start_detached

    host, port = default_address(ws.settings.base_url)
    known = ws.page_server()
    if known is not None:
        if known.get("url") == f"http://{host}:{port}" and _serves(str(known["url"]), registry.address):
            return str(known["url"]) + verify_path
        ws.stop_page_server()
    if port_in_use(host, port):
        _say(f"warning: port {port} is in use by another program, so the page the QR codes open "
             f"({ws.settings.base_url}) is not this folder's: stop that program and run the demo again")
        return None
    return start_detached(ws, host=host, port=port).page(verify_path)


def _serves(url: str, registry: str) -> bool:
    """True when the page server at `url` reads `registry` (its /healthz names it)."""
    import urllib.request

    try:
        with urllib.request.urlopen(url + "/healthz", timeout=5) as response:  # noqa: S310 - loopback
            served = json.loads(response.read()).get("registry")
    except (OSError, ValueError):
        return False
    return isinstance(served, str) and served.lower() == registry.lower()


def run_demo(ws: Workspace, *, json_output: bool = False) -> dict[str, Any]:
    """Run the demo; prints progress to stderr and the summary to stdout."""
    started = ws.start_local_chain()
    rpc = ws.rpc
    if started is None:
        _say(f"chain: {rpc.url}")
    else:
        _say(f"local chain: {rpc.url} ({'started' if ws.started_chain else 'already running'}, pid {started.pid})")
    try:
        registry = ws.registry(write=True)
        _say(f"registry: {registry.address} (already deployed)")
    except ConfigurationError:
        registry, receipt = service.deploy(ws)
        _say(f"registry: {registry.address} (deployed, {receipt.gas_used:,} gas)")
    out_dir = _shown(ws.home / "demo")
    registered: list[dict[str, Any]] = []
    for order in sample_orders():
        current = registry.state(order.token_id)
        if current.registered:
            verify_url = make_verify_url(ws.base_url, order)
            document = ws.store.get(current.document_hash)
            if document is None:
                raise ConfigurationError(f"order {order.order_number} is on chain but its PDF is not in "
                                         f"{ws.store.root}", hint="remove ./.peru-compras to start over")
            digest, note = current.document_hash, "already registered"
        else:  # drawn with its QR printed, stored, minted: what `register` does
            prepared = service.prepare(order, None, base_url=ws.base_url, qr_fragment=ws.qr_signer())
            registration = service.register(ws, prepared).registration
            verify_url, document, digest = prepared.verify_url, prepared.document, prepared.sha256
            note = f"registered in block {registration.block_number}, {registration.gas_used:,} gas"
        path = out_dir / f"{order.order_number}.pdf"
        write_atomic(path, document)
        write_atomic(out_dir / f"{order.order_number}.json",  # the record, to try the commands with
                     (json.dumps(order.to_json(), ensure_ascii=False, indent=2) + "\n").encode())
        _say(f"  {order.order_number:<20} {note}  {hashlink(digest)}")
        registered.append({"order_number": order.order_number, "token_id": token_hex(order.token_id),
                           "verify_url": verify_url, "stamped_pdf": str(path), "sha256": digest.hex()})
    first = sample_orders()[0]
    original = (out_dir / f"{first.order_number}.pdf").read_bytes()
    forged = altered_copy(first, make_verify_url(ws.base_url, first))
    forged_path = out_dir / f"{first.order_number}-ALTERADA.pdf"
    write_atomic(forged_path, forged)
    authentic = service.verify_pdf(registry, original, token_id=first.token_id)
    altered = service.verify_pdf(registry, forged, token_id=first.token_id)
    summary: dict[str, Any] = {
        "rpc": rpc.url,
        "registry": registry.address,
        "orders": registered,
        "verify": [
            {"file": registered[0]["stamped_pdf"], "status": authentic.status},
            {"file": str(forged_path), "status": altered.status, "sha256": sha256(forged).hex(),
             "expected_sha256": (altered.expected_sha256 or b"").hex()},
        ],
    }
    summary["page_url"] = _page_server(ws, registry, first.verify_path)
    if json_output:
        print(json.dumps(summary, ensure_ascii=False))
    else:
        print(f"verify {registered[0]['stamped_pdf']}: {authentic.status.upper()}")
        print(f"verify {forged_path}: {altered.status.upper()} (sha256 {sha256(forged).hex()[:16]}… "
              f"≠ registered {(altered.expected_sha256 or b'').hex()[:16]}…)")
        if summary["page_url"]:
            print(f"the verification page is at {summary['page_url']}")
        print(f"the local chain keeps running at {rpc.url}; try:")
        print(f"  peru-compras show {first.key}")
        print(f"  peru-compras verify {forged_path}")
        print("  peru-compras status    (what runs for this folder)")
        print("  peru-compras stop      (ends the chain and the page; the chain's state is kept)")
    return summary
