"""The command line: parse, call the library (:mod:`.service`), print. ``--json`` puts only JSON on stdout.

Exit codes: 0 success (verify: authentic); 1 a negative answer or a refusal by the chain; 2 bad input;
3 the node or a service cannot be reached. Errors print one line, never a traceback.

The commands live in :mod:`.commands` (one group a module) and are registered here, in the order
``--help`` lists them. A command from another module is one line under "more commands" below.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer

from .commands import local, orders, reading, watch
from .commands.base import emit as _emit
from .commands.base import err as _err
from .commands.base import hex_id as _hex  # noqa: F401 — for the commands added at the end
from .commands.base import state
from .commands.base import workspace as _workspace
from .commands.roles import roles_app
from .errors import PeruComprasError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    rich_markup_mode=None,
    help="Register public purchase orders as verifiable records on an EVM chain (LACNet, Besu, Anvil).",
)
app.add_typer(roles_app, name="roles")

# Options that may appear anywhere on the line; main() moves them before the command.
GLOBAL_VALUE_OPTIONS = ("--rpc", "--registry", "--network", "--keystore", "--base-url", "--node-address", "--home",
                        "--trusted-forwarder", "--lacnet-model", "--metatx-hub", "--relayer-keystore")
GLOBAL_FLAGS = ("--json",)
__all__ = ["app", "main", "state"]


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


# -- the commands, in the order --help lists them ------------------------------------------------------

app.command()(local.node)
app.command()(orders.deploy)
app.command()(orders.register)
app.command("register-batch")(orders.register_batch)
app.command("export-ocds")(orders.export_ocds)
app.command()(reading.show)
app.command()(reading.verify)
app.command("qr")(orders.qr_command)
app.command()(orders.render)
app.command()(orders.annul)
app.command()(local.demo)
app.command()(local.serve)
app.command()(local.status)
app.command()(local.stop)

# -- more commands: add yours here (a function in its own module, registered with one line:
#    app.command("name")(module.function)), before GLOBAL_HELP below gives every command its epilog ------

app.command("mirror")(watch.mirror_command)  # H8: the registry in SQLite (mirror.py)
app.command("audit")(watch.audit_command)  # H8: every published document (audit.py)


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
    from .trust import url_host

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
    from .trust import url_host

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
