"""The shipped registry artifact (ABI and bytecode) and the mapping of its reverts to named exceptions."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from ..errors import (
    ChainRefused,
    InvalidReason,
    MalformedOrder,
    NotAuthorized,
    OrderAlreadyRegistered,
    OrderNotRegistered,
    OrderNotValid,
    RegistryPaused,
    TokenLocked,
)
from ..hashing import keccak256 as keccak
from .abi import decode as abi_decode

STATUS_NAMES = ("not_registered", "valid", "annulled", "superseded")
ROLE_NAMES = {
    "admin": b"\0" * 32,
    "registrar": keccak(b"REGISTRAR_ROLE"),
    "annuller": keccak(b"ANNULLER_ROLE"),
}


@cache
def artifact() -> dict[str, Any]:
    """The compiled PurchaseOrderRegistry: ``abi``, ``bytecode``, ``deployedBytecode``."""
    text = resources.files("peru_compras.chain").joinpath("artifacts/PurchaseOrderRegistry.json").read_text()
    data: dict[str, Any] = json.loads(text)
    return data


@cache
def _errors() -> dict[bytes, tuple[str, list[str]]]:
    out: dict[bytes, tuple[str, list[str]]] = {}
    for entry in artifact()["abi"]:
        if entry["type"] == "error":
            types = [arg["type"] for arg in entry["inputs"]]
            out[keccak(f"{entry['name']}({','.join(types)})".encode())[:4]] = (entry["name"], types)
    out[keccak(b"Error(string)")[:4]] = ("Error", ["string"])
    return out


def selector(signature: str) -> bytes:
    """The 4-byte function selector of `signature` (e.g. ``register(bytes)``)."""
    return keccak(signature.encode())[:4]


def topic(signature: str) -> str:
    """The log topic of an event `signature`, as ``0x…`` hex."""
    return "0x" + keccak(signature.encode()).hex()


def role_name(role: bytes) -> str:
    for name, value in ROLE_NAMES.items():
        if value == role:
            return name
    return "0x" + role.hex()


def _token(value: int) -> str:
    return f"0x{value:064x}"


def revert_error(data: bytes, *, action: str) -> ChainRefused:
    """The named exception for a revert's return data (custom error or ``Error(string)``)."""
    known = _errors().get(data[:4])
    if known is None:
        return ChainRefused(f"the registry refused to {action} (revert data 0x{data.hex() or 'empty'})",
                            hint="check the registry address and the transaction with `show`")
    name, types = known
    try:
        args = list(abi_decode(types, data[4:]))
    except Exception:  # noqa: BLE001 — undecodable payload: report it raw
        args = []
    if name == "PurchaseOrderAlreadyRegistered" and len(args) == 2:
        entity, _, number = str(args[1]).partition("/")
        return OrderAlreadyRegistered(
            f"order {number!r} of entity {entity} is already registered as token {_token(args[0])}",
            token_id=int(args[0]),
            hint=f"see it with `peru-compras show {entity}/{number}`; to correct it use --supersedes",
        )
    if name == "PurchaseOrderNotRegistered" and args:
        return OrderNotRegistered(f"no order is registered as token {_token(args[0])}",
                                  hint="check the token id with `peru-compras show`")
    if name == "PurchaseOrderNotValid" and len(args) == 2:
        status = STATUS_NAMES[int(args[1])] if int(args[1]) < len(STATUS_NAMES) else str(args[1])
        verb = action.split()[0]
        done = {"annul": "annulled", "supersede": "superseded"}.get(verb, verb + "ed")
        return OrderNotValid(f"token {_token(args[0])} is {status}, so it cannot be {done}",
                             hint="only a valid order can be annulled or superseded")
    if name == "AccessControlUnauthorizedAccount" and len(args) == 2:
        return NotAuthorized(f"account {args[0]} lacks the {role_name(bytes(args[1]))} role needed to {action}",
                             hint="ask the registry admin: `peru-compras roles grant "
                                  f"{role_name(bytes(args[1]))} {args[0]}`")
    if name == "EnforcedPause":
        return RegistryPaused(f"the registry is paused, so it cannot {action}",
                              hint="ask the registry admin to unpause it")
    if name == "PurchaseOrderMalformed":
        return MalformedOrder(f"the registry could not parse order entry {args[0] if args else '?'}",
                              hint="this is a client bug: report it with the command you ran")
    if name == "PurchaseOrderEmptyDocumentHash":
        return MalformedOrder("the document hash is empty", hint="register a real PDF")
    if name == "PurchaseOrderInvalidReason":
        return InvalidReason(f"an annulment reason needs 1 to 1000 bytes, got {args[0] if args else '?'}",
                             hint="give a shorter --reason")
    if name == "PurchaseOrderTokenLocked":
        return TokenLocked(f"token {_token(args[0])} is locked (ERC-5192) and never moves")
    if name == "Error" and args:
        return ChainRefused(f"the chain refused to {action}: {args[0]}")
    return ChainRefused(f"the registry refused to {action}: {name}{tuple(args)}")
