"""`peru-compras roles grant | revoke | list`: who may register and annul."""

from __future__ import annotations

from collections.abc import Callable

import typer

from .base import emit, workspace

roles_app = typer.Typer(no_args_is_help=True, help="Manage registrars and annullers.")


def _role_command(*, granted: bool, doc: str) -> Callable[..., None]:
    """`roles grant` or `roles revoke`: the same two arguments, one transaction."""

    def command(role: str = typer.Argument(..., help="registrar | annuller | admin"),
                account: str = typer.Argument(..., help="0x address")) -> None:
        _change(role, account, granted=granted)

    command.__doc__ = doc
    return command


roles_app.command("grant")(_role_command(granted=True, doc="""Give ROLE to ACCOUNT (needs the admin role).

    Example:
        peru-compras roles grant registrar 0x1234…
    """))
roles_app.command("revoke")(_role_command(granted=False, doc="""Take ROLE from ACCOUNT (needs the admin role).

    Example:
        peru-compras roles revoke registrar 0x1234…
    """))


def _change(role: str, account: str, *, granted: bool) -> None:
    registry = workspace().registry(write=True)
    receipt = registry.grant(role, account) if granted else registry.revoke(role, account)
    emit({"tx_hash": receipt.tx_hash, "role": role, "account": account, "granted": granted},
         f"{role} {'granted to' if granted else 'revoked from'} {account} (tx {receipt.tx_hash})")


@roles_app.command("list")
def roles_list() -> None:
    """List who holds each role now.

    Example:
        peru-compras roles list
    """
    from ..chain.contract import ROLE_NAMES

    registry = workspace().registry()
    data = {role: registry.members(role) for role in ROLE_NAMES}
    emit(data, "\n".join(f"{role}: {', '.join(members) or '—'}" for role, members in data.items()))
