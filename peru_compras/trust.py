"""The trust pack: what an offline check of a signed QR needs, read from the chain alone, as of one block.

    {"format": "peru-compras-trust-pack/1", "chain_id": 31337, "registry": "0x… (checksummed)",
     "hosts": ["oc.example.pe"], "block": 123, "block_hash": "0x…", "time": "2026-12-01T13:00:00Z",
     "registrars": [{"address": "0x…", "from_block": 5, "until_block": null}, …],
     "annulled": ["0x<64 hex token id>", …], "superseded": {"0x<old>": "0x<new>", …}}

`registrars` has one entry per period an address held the registrar role: from the block of its
``RoleGranted`` to the block of its ``RoleRevoked`` (``null`` while it holds it), each open period confirmed
by ``hasRole`` at the pack's block. `annulled` and `superseded` come from ``OrderAnnulled`` and
``OrderSuperseded``; `hosts` is the host of the registry's ``documentBaseURI`` at that block, then any the
caller adds (the page's own). The block's hash is read before and after the scan: a reorganisation in
between is refused, not packed.

A pack read from a file is outside input: :func:`load_trust_pack` bounds its size and depth (safejson) and
checks every field's type and shape; nothing in it is trusted beyond what its reader chose to trust.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from .errors import ChainRefused, InvalidInput
from .urls import token_hex

if TYPE_CHECKING:
    from .chain.client import Registry

FORMAT = "peru-compras-trust-pack/1"
MAX_PACK_BYTES = 16 * 1024 * 1024
MAX_PACK_DEPTH = 4
MAX_HOSTS = 16
MAX_REGISTRAR_PERIODS = 10_000
MAX_STATUS_ENTRIES = 200_000

_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_WORD = re.compile(r"0x[0-9a-f]{64}")
_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")
_HOST = re.compile(r"[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?(:[0-9]{1,5})?|\[[0-9a-f:.]{2,45}\](:[0-9]{1,5})?")
_KEYS = ("format", "chain_id", "registry", "hosts", "block", "block_hash", "time", "registrars", "annulled",
         "superseded")


@dataclass(frozen=True, slots=True)
class Period:
    """One stretch of blocks an address held the registrar role (`until_block` None: it still does)."""

    address: str
    from_block: int
    until_block: int | None

    def to_json(self) -> dict[str, Any]:
        return {"address": self.address, "from_block": self.from_block, "until_block": self.until_block}


@dataclass(frozen=True, slots=True)
class TrustPack:
    chain_id: int
    registry: str
    hosts: tuple[str, ...]
    block: int
    block_hash: str
    time: str
    registrars: tuple[Period, ...]
    annulled: frozenset[str]
    superseded: Mapping[str, str]

    def registrar(self, address: str) -> tuple[bool, int | None]:
        """Whether `address` holds the registrar role as of the pack's block, and when it does not but did,
        the block it lost it (the last ``until_block``)."""
        wanted = address.lower()
        periods = [period for period in self.registrars if period.address.lower() == wanted]
        if any(period.until_block is None for period in periods):
            return True, None
        ends = [period.until_block for period in periods if period.until_block is not None]
        return False, max(ends) if ends else None

    def to_json(self) -> dict[str, Any]:
        return {"format": FORMAT, "chain_id": self.chain_id, "registry": self.registry, "hosts": list(self.hosts),
                "block": self.block, "block_hash": self.block_hash, "time": self.time,
                "registrars": [period.to_json() for period in self.registrars],
                "annulled": sorted(self.annulled), "superseded": dict(sorted(self.superseded.items()))}


# -- building it from the chain ------------------------------------------------------------------------------


def url_host(url: str) -> str | None:
    """The host of `url` as a browser's ``URL.host`` gives it: lowercase, the port only when it is not the
    scheme's default; None when there is none."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if not parts.hostname:
        return None
    default = {"http": 80, "https": 443}.get(parts.scheme.lower())
    return parts.hostname.lower() + (f":{port}" if port is not None and port != default else "")


def build_trust_pack(registry: Registry, *, hosts: Sequence[str] = (), block: int | None = None) -> dict[str, Any]:
    """The trust pack (JSON-able) of `registry` as of `block` (default: the latest), read from its node."""
    return read_trust_pack(registry, hosts=hosts, block=block).to_json()


def read_trust_pack(registry: Registry, *, hosts: Sequence[str] = (), block: int | None = None) -> TrustPack:
    """As :func:`build_trust_pack`, as a :class:`TrustPack`."""
    from .chain.abi import decode as abi_decode
    from .chain.client import ORDER_ANNULLED, ORDER_SUPERSEDED, ROLE_GRANTED, ROLE_REVOKED
    from .chain.contract import ROLE_NAMES, selector

    rpc = registry.rpc
    chain_id = rpc.hex_int(rpc.call("eth_chainId"), "eth_chainId")
    if block is None:
        block = rpc.hex_int(rpc.call("eth_blockNumber"), "eth_blockNumber")
    block_hash, stamp = _block(registry, block)
    role = "0x" + ROLE_NAMES["registrar"].hex()
    role_logs = [log for event in (ROLE_GRANTED, ROLE_REVOKED)
                 for log in registry.logs_between([event, role], registry.from_block, block)]
    annul_logs = registry.logs_between([ORDER_ANNULLED], registry.from_block, block)
    supersede_logs = registry.logs_between([ORDER_SUPERSEDED], registry.from_block, block)
    raw = rpc.call("eth_call", [{"to": registry.address, "data": "0x" + selector("documentBaseURI()").hex()},
                                hex(block)])
    try:
        (base_uri,) = abi_decode(["string"], rpc.hex_bytes(raw, "eth_call"))
    except Exception:  # noqa: BLE001 — the node's bytes, not ours
        raise rpc.invalid("eth_call", "a documentBaseURI that does not decode as a string") from None
    periods = _periods(registry, role_logs, block)
    annulled = frozenset(token_hex(_topic_int(registry, log, 1)) for log in annul_logs)
    superseded = {token_hex(_topic_int(registry, log, 1)): token_hex(_topic_int(registry, log, 2))
                  for log in supersede_logs}
    listed = [host for host in [url_host(str(base_uri)), *hosts] if host]
    if _block(registry, block)[0] != block_hash:
        raise ChainRefused(f"block {block} changed while the trust pack was read (a reorganisation)",
                           hint="run trust-pack again")
    from .chain.abi import to_checksum_address

    return TrustPack(chain_id, to_checksum_address(registry.address), tuple(dict.fromkeys(h.lower() for h in listed)),
                     block, block_hash, stamp, tuple(periods), annulled, superseded)


def _block(registry: Registry, number: int) -> tuple[str, str]:
    rpc = registry.rpc
    found = rpc.call("eth_getBlockByNumber", [hex(number), False])
    if found is None:
        raise InvalidInput(f"block {number} is not on the chain yet", hint="give a block at or below the latest")
    digest = rpc.data_field(found, "hash", "eth_getBlockByNumber")
    if len(digest) != 32:
        raise rpc.invalid("eth_getBlockByNumber", "a block hash that is not 32 bytes")
    seconds = rpc.int_field(found, "timestamp", "eth_getBlockByNumber")
    try:
        stamp = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, OSError, ValueError):
        raise rpc.invalid("eth_getBlockByNumber", f"timestamp {seconds}") from None
    return "0x" + digest.hex(), stamp


def _topic_int(registry: Registry, log: Any, index: int) -> int:
    topics = log.get("topics") if isinstance(log, dict) else None
    if not (isinstance(topics, list) and len(topics) > index and isinstance(topics[index], str)
            and re.fullmatch(r"0x[0-9a-fA-F]{64}", topics[index])):
        raise registry.rpc.invalid("eth_getLogs", f"a log without topic {index} as a 32-byte word")
    return int(topics[index], 16)


def _periods(registry: Registry, logs: list[Any], block: int) -> list[Period]:
    """Role periods from RoleGranted / RoleRevoked logs in chain order; each open one confirmed by hasRole."""
    from .chain.abi import encode as abi_encode
    from .chain.abi import to_checksum_address
    from .chain.client import ROLE_GRANTED
    from .chain.contract import ROLE_NAMES, selector

    rpc = registry.rpc
    ordered = sorted(logs, key=lambda log: (rpc.int_field(log, "blockNumber", "eth_getLogs"),
                                            rpc.int_field(log, "logIndex", "eth_getLogs")))
    closed: list[Period] = []
    open_since: dict[str, int] = {}
    for log in ordered:
        account = str(to_checksum_address(f"0x{_topic_int(registry, log, 2):064x}"[-40:]))
        at = rpc.int_field(log, "blockNumber", "eth_getLogs")
        if log["topics"][0] == ROLE_GRANTED:
            open_since.setdefault(account, at)
        elif account in open_since:
            closed.append(Period(account, open_since.pop(account), at))
    for holder in open_since:
        data = selector("hasRole(bytes32,address)") + abi_encode(["bytes32", "address"],
                                                                 [ROLE_NAMES["registrar"], holder])
        answer = rpc.hex_bytes(rpc.call("eth_call", [{"to": registry.address, "data": "0x" + data.hex()},
                                                     hex(block)]), "eth_call")
        if answer != (1).to_bytes(32, "big"):
            raise ChainRefused(f"the registry's events say {holder} holds the registrar role at block {block}, "
                               "its hasRole says not", hint="check --rpc points at a full, honest node")
    periods = closed + [Period(account, since, None) for account, since in open_since.items()]
    return sorted(periods, key=lambda period: (period.from_block, period.address))


# -- reading one from a file ---------------------------------------------------------------------------------


def read_limited(path: Path, limit: int, what: str) -> bytes:
    """The bytes of `path`, refused (InvalidInput naming `what` and the path) when unreadable or over `limit`."""
    try:
        with path.open("rb") as handle:
            raw = handle.read(limit + 1)
    except OSError as exc:
        raise InvalidInput(f"cannot read {what} {str(path)!r}: {exc.strerror}", hint="check the path") from None
    if len(raw) > limit:
        raise InvalidInput(f"{what} {str(path)!r} is over {limit // 2**20} MiB", hint=f"is it a {what}?")
    return raw


def read_trust_file(path: Path) -> TrustPack:
    """Read and check a trust pack file (bounded read)."""
    return load_trust_pack(read_limited(path, MAX_PACK_BYTES, "trust pack"), source=f"trust pack {str(path)!r}")


def load_trust_pack(raw: bytes | str, *, source: str = "trust pack") -> TrustPack:
    """A :class:`TrustPack` from its JSON; :class:`InvalidInput` naming the first field that is wrong."""
    from . import safejson

    data = safejson.loads(raw, source=source, max_bytes=MAX_PACK_BYTES, max_depth=MAX_PACK_DEPTH)
    hint = "get a fresh one with `peru-compras trust-pack --out FILE` (or the page's /trust-pack.json)"

    def bad(where: str, rule: str) -> InvalidInput:
        return InvalidInput(f"{source}: {where} — {rule}", hint=hint)

    if not isinstance(data, dict):
        raise bad("the file", "must be a JSON object")
    if data.get("format") != FORMAT:
        raise bad("format", f"must be {FORMAT!r}")
    unknown = sorted(set(data) - set(_KEYS))
    if unknown or len(data) != len(_KEYS):
        missing = sorted(set(_KEYS) - set(data))
        raise bad(", ".join(unknown or missing)[:200], "unknown field" if unknown else "missing")

    def number(value: Any, where: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**63:
            raise bad(where, "a whole number from 0")
        return value

    def word(value: Any, where: str) -> str:
        if not isinstance(value, str) or not _WORD.fullmatch(value):
            raise bad(where, "0x and 64 lowercase hex digits")
        return value

    def address(value: Any, where: str) -> str:
        from .chain.abi import to_checksum_address

        if not isinstance(value, str) or not _ADDRESS.fullmatch(value) or to_checksum_address(value) != value:
            raise bad(where, "a checksummed address (0x and 40 hex digits)")
        return value

    hosts = data["hosts"]
    if not isinstance(hosts, list) or len(hosts) > MAX_HOSTS or not all(
            isinstance(host, str) and _HOST.fullmatch(host) for host in hosts):
        raise bad("hosts", f"a list of at most {MAX_HOSTS} lowercase host names")
    if not isinstance(data["time"], str) or not _TIME.fullmatch(data["time"]):
        raise bad("time", "YYYY-MM-DDTHH:MM:SSZ")
    registrars = data["registrars"]
    if not isinstance(registrars, list) or len(registrars) > MAX_REGISTRAR_PERIODS:
        raise bad("registrars", f"a list of at most {MAX_REGISTRAR_PERIODS:,} periods")
    periods = []
    for index, entry in enumerate(registrars):
        where = f"registrars[{index}]"
        if not isinstance(entry, dict) or set(entry) != {"address", "from_block", "until_block"}:
            raise bad(where, "an object {address, from_block, until_block}")
        until = entry["until_block"]
        start = number(entry["from_block"], f"{where}.from_block")
        if until is not None and number(until, f"{where}.until_block") < start:
            raise bad(f"{where}.until_block", "null or at least from_block")
        periods.append(Period(address(entry["address"], f"{where}.address"), start, until))
    annulled, superseded = data["annulled"], data["superseded"]
    if not isinstance(annulled, list) or not isinstance(superseded, dict) or (
            len(annulled) + len(superseded) > MAX_STATUS_ENTRIES):
        raise bad("annulled, superseded", f"a list and an object, at most {MAX_STATUS_ENTRIES:,} entries together")
    return TrustPack(
        chain_id=number(data["chain_id"], "chain_id"), registry=address(data["registry"], "registry"),
        hosts=tuple(hosts), block=number(data["block"], "block"), block_hash=word(data["block_hash"], "block_hash"),
        time=data["time"], registrars=tuple(periods),
        annulled=frozenset(word(token, f"annulled[{index}]") for index, token in enumerate(annulled)),
        superseded={word(old, "superseded key"): word(new, f"superseded[{old}]") for old, new in superseded.items()},
    )
