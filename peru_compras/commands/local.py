"""What runs for this folder: node, demo, serve, status, stop."""

from __future__ import annotations

import os
import sys
from typing import Any

import typer

from ..errors import PeruComprasError
from .base import emit, err, state, workspace


def node(port: int = typer.Option(8545, min=1, max=65535, help="Loopback port to listen on.")) -> None:
    """Run this folder's local chain (Anvil) in the foreground until Ctrl-C; its state persists under
    ./.peru-compras. One folder has one chain: when it already runs (say, started by `demo`), this says
    where and exits 1 (`peru-compras stop` ends it).

    Example:
        peru-compras node --port 8545
    """
    from ..chain.node import ChainInfo

    def ready(info: ChainInfo) -> None:
        emit({"rpc": info.rpc, "chain_id": info.chain_id}, f"local chain running at {info.rpc} "
             f"(chain id {info.chain_id}); Ctrl-C stops it")
        sys.stdout.flush()

    ws = workspace()
    ws.chain.run(port=port, started_by="peru-compras node", ready=ready)


def demo() -> None:
    """The main job on the embedded default: local chain, deploy, register the sample orders with their QR,
    verify an authentic and an altered copy, and print where to look.

    Example:
        peru-compras demo
    """
    from ..demo import run_demo

    run_demo(workspace(), json_output=state.json)


def serve(
    host: str = typer.Option(None, "--host", help="Address to listen on [default 127.0.0.1]."),
    port: int = typer.Option(None, "--port", min=1, max=65535,
                             help="Port [default: the base URL's port on loopback, else 8000]."),
) -> None:
    """Serve the verification page (the order pages the QR codes open, search, JSON API) until Ctrl-C.

    Example:
        peru-compras serve --host 0.0.0.0 --port 8000
    """
    from urllib.parse import urlsplit

    from ..chain.node import port_in_use
    from ..errors import NodeUnavailable
    from ..web.server import LOOPBACK, default_address
    from ..web.server import serve as run_server

    ws = workspace()
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
        err(f"warning: the QR codes point to {base_url}, not to this server (port {port}): serve on port "
            f"{default_port}, or register with --base-url http://127.0.0.1:{port}")
    with ws.serving_page(host, port):  # so that `status` shows it and `stop` ends it
        run_server(ws, host=host, port=port)


def status() -> None:
    """Show what runs for this folder: its local chain (pid, port, block) and the background page server.

    Example:
        peru-compras status
    """
    ws = workspace()
    chain = ws.chain.running()
    page = ws.page_server()
    data: dict[str, Any] = {"running": chain is not None, "rpc": chain.rpc if chain else None,
                            "page": page.get("url") if page else None, "chain": None, "page_server": None,
                            "state_file": str(ws.chain.state_file)}
    lines = []
    if chain is not None:
        from ..chain.rpc import Rpc

        block: int | None
        try:
            block = int(Rpc(chain.rpc, timeout=2.0, attempts=1).call("eth_blockNumber"), 16)
        except PeruComprasError:
            block = None
        data["chain"] = {**chain.to_json(), "block": block}
        lines.append(f"local chain: running at {chain.rpc} (pid {chain.pid}, Anvil pid {chain.anvil_pid}, chain id "
                     f"{chain.chain_id}, block {block if block is not None else '?'}; started by {chain.started_by})")
        remembered = ws.remembered_registry(chain.chain_id) or {}
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
    emit(data, "\n".join(lines))


def stop() -> None:
    """End what runs in the background for this folder: the page server and the local chain (its state is
    saved first and kept; the next command that writes starts it again).

    Example:
        peru-compras stop
    """
    ws = workspace()
    stopped: list[str] = []
    page = ws.stop_page_server()
    if page is not None:
        stopped.append(f"the page server (pid {page['pid']})")
    chain = ws.chain.stop()
    if chain is not None:
        stopped.append(f"the local chain (pid {chain.pid}, Anvil pid {chain.anvil_pid}; its state is kept in "
                       f"{ws.chain.state_file})")
    emit({"running": False, "rpc": chain.rpc if chain else None, "page": page.get("url") if page else None,
          "stopped_chain": chain.to_json() if chain else None, "stopped_page": page},
         "stopped " + " and ".join(stopped) if stopped else "nothing was running for this folder")
