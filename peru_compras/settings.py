"""Every setting, read once: flags, else environment variables, else ``peru-compras.toml`` in the working
folder, else the defaults (a local chain and document store under ``./.peru-compras/``).

:func:`load_settings` returns one frozen :class:`Settings` and never writes ``os.environ``: a library caller
gets the same values the command line does, and two loads in one process may differ. Each setting's
environment variable is ``PERU_COMPRAS_<NAME>`` and its key in the file is ``<name>`` in lower case with
dashes (``max-pdf-bytes``; underscores are accepted too). A bad value is a :class:`ConfigurationError` that
names the variable or key and the value.

Importing this module is cheap: no web3, eth-account or pikepdf (the signer's key is read by
:func:`load_private_key`, which loads eth-account only then).
"""

from __future__ import annotations

import math
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .chain.networks import Network, network
from .errors import ConfigurationError, setting_key
from .urls import node_url_problem

if TYPE_CHECKING:
    from .chain.keys import Signer

HOME = ".peru-compras"
CONFIG_FILE = "peru-compras.toml"
DEFAULT_BASE_URL = "http://127.0.0.1:8000"
LACNET_MODELS = ("relay", "metatx")
#: PDFs: bytes, pages, and bytes once every stream is decoded (in all; also qpdf's bound on any one stream)
DEFAULT_MAX_PDF_BYTES = 50 * 1024 * 1024
DEFAULT_MAX_PDF_PAGES = 1000
DEFAULT_MAX_PDF_DECODED_BYTES = 256 * 1024 * 1024
#: verify --fetch: bytes read, seconds in all for one download (redirects included)
DEFAULT_FETCH_MAX_BYTES = 50 * 1024 * 1024
DEFAULT_FETCH_TIMEOUT = 20.0
#: the page server: a request's head and body within this many seconds; idle keep-alive seconds;
#: connections per client address; proxies whose X-Forwarded-For / -Proto are believed
DEFAULT_REQUEST_TIMEOUT = 10.0
DEFAULT_KEEP_ALIVE_TIMEOUT = 5
DEFAULT_MAX_CONNECTIONS_PER_CLIENT = 32
DEFAULT_TRUSTED_PROXIES = "127.0.0.1,::1"
_UNITS = {"kb": 1024, "mb": 1024**2, "gb": 1024**3}
_SERVER_MAX = 10**6  # a server limit above this is a typo, and would switch the limit off in practice


def variable(name: str) -> str:
    """The environment variable of setting `name`: ``max_pdf_bytes`` → ``PERU_COMPRAS_MAX_PDF_BYTES``."""
    return "PERU_COMPRAS_" + name.upper()


@dataclass(frozen=True)
class Settings:
    """Every setting, resolved. `home` holds the local chain, deployment record, documents and journal.

    Construct it directly (every field but `home` has its default) or with :func:`load_settings`."""

    home: Path
    #: the node written to and read from (the first of PERU_COMPRAS_RPC's URLs)
    rpc: str | None = None
    #: further independent nodes whose reads must agree (the rest of PERU_COMPRAS_RPC's URLs)
    read_rpcs: tuple[str, ...] = ()
    #: how many of :attr:`rpc_urls` must agree; None: all of them
    rpc_quorum: int | None = None
    registry: str | None = None
    network: Network = field(default_factory=lambda: network("local"))
    keystore: Path | None = None
    base_url: str = DEFAULT_BASE_URL
    node_address: str | None = None
    gas_price: int | None = None
    rpc_token: str | None = field(default=None, repr=False)
    #: LACNet's way in: ``relay`` (gas model) or ``metatx`` (ERC-2771 hub, LACNET.md section 2)
    lacnet_model: str = "relay"
    relayer_keystore: Path | None = None
    max_pdf_bytes: int = DEFAULT_MAX_PDF_BYTES
    max_pdf_pages: int = DEFAULT_MAX_PDF_PAGES
    max_pdf_decoded_bytes: int = DEFAULT_MAX_PDF_DECODED_BYTES
    #: hosts `verify --fetch` may download from besides the base URL's (``host`` or ``host:port``, lower case)
    fetch_hosts: tuple[str, ...] = ()
    fetch_max_bytes: int = DEFAULT_FETCH_MAX_BYTES
    fetch_timeout: float = DEFAULT_FETCH_TIMEOUT
    #: the page's block-explorer link template (``{kind}``, ``{id}``), or None for no links
    explorer_url: str | None = None
    #: the page's mirror (a file ``peru-compras mirror`` built) for its list pages, or None for no lists
    mirror: Path | None = None
    trusted_proxies: str = DEFAULT_TRUSTED_PROXIES
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT
    keep_alive_timeout: int = DEFAULT_KEEP_ALIVE_TIMEOUT
    max_connections_per_client: int = DEFAULT_MAX_CONNECTIONS_PER_CLIENT

    @property
    def is_embedded(self) -> bool:
        """True when using the embedded local chain (no --rpc given)."""
        return self.rpc is None and self.network.name == "local"

    @property
    def rpc_urls(self) -> tuple[str, ...]:
        """Every node configured: :attr:`rpc` first, then :attr:`read_rpcs`."""
        return ((self.rpc,) if self.rpc else ()) + self.read_rpcs


class _Sources:
    """Where one load looks: flags, then the environment, then the file."""

    def __init__(self, flags: Mapping[str, Any], env: Mapping[str, str], file_values: dict[str, Any],
                 config: Path) -> None:
        self.flags, self.env, self.file_values, self.config = flags, env, file_values, config

    def pick(self, name: str) -> tuple[Any, str]:
        """(value, where it came from, for messages); (None, "") when the setting is not set."""
        flag = self.flags.get(name)
        if flag not in (None, "", [], ()):
            return flag, f"--{name.replace('_', '-')}"
        env = self.env.get(variable(name), "")
        if env.strip():
            return env, variable(name)
        key = setting_key(variable(name))
        for spelling in (key, name):
            if self.file_values.get(spelling) is not None:
                return self.file_values[spelling], f"{spelling} in {self.config}"
        return None, ""

    def text(self, name: str) -> str | None:
        value, where = self.pick(name)
        if value is None:
            return None
        if isinstance(value, Path):
            return str(value)
        if not isinstance(value, str):
            raise ConfigurationError(f"{where} is {value!r}, not text", hint=f"write it as a string: {name} = \"…\"")
        return value.strip() or None

    def listed(self, name: str) -> tuple[str, ...]:
        """A list from TOML, or comma-separated text from a flag or variable (empty parts dropped)."""
        value, where = self.pick(name)
        if value is None:
            return ()
        parts = value if isinstance(value, list | tuple) else value.split(",") if isinstance(value, str) else [value]
        if not all(isinstance(part, str) for part in parts):
            raise ConfigurationError(f"{where} is {value!r}, not a list of text", hint=f"e.g. {name} = [\"…\"]")
        return tuple(part.strip() for part in parts if part.strip())

    def whole(self, name: str, default: int, *, sizes: bool = False, maximum: float = math.inf) -> int:
        """A positive whole number; with `sizes`, ``50MB`` / ``40KB`` / ``1GB`` and ``52_428_800`` too."""
        value, where = self.pick(name)
        if value is None:
            return default
        number: int | None = None
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        elif isinstance(value, str):
            raw, factor = value.strip().replace("_", ""), 1
            for suffix, unit in _UNITS.items():
                if sizes and raw.lower().endswith(suffix):
                    raw, factor = raw[: -len(suffix)].strip(), unit
            number = int(raw) * factor if raw.isascii() and raw.isdigit() else None
        if number is None or not 0 < number < maximum:
            example = "52428800 or 50MB" if sizes else str(default)
            raise ConfigurationError(f"{_source(name, where)} is {value!r}, not a positive whole number",
                                     hint=f"unset it or give e.g. {example}")
        return number

    def seconds(self, name: str, default: float, *, maximum: float = math.inf) -> float:
        """A positive, finite number (nan and inf would switch a time limit off)."""
        value, where = self.pick(name)
        if value is None:
            return default
        number = math.nan
        if isinstance(value, int | float) and not isinstance(value, bool):
            number = float(value)
        elif isinstance(value, str):
            try:
                number = float(value.strip())
            except ValueError:
                number = math.nan
        if not 0 < number < maximum:  # also false for nan
            raise ConfigurationError(f"{_source(name, where)} is {value!r}, not a positive number",
                                     hint=f"unset it or give e.g. {default:g}")
        return number


def _source(name: str, where: str) -> str:
    """A variable's name with the file key beside it (the one message for a setting from either place)."""
    if where == variable(name):
        return f"{where} (or {setting_key(where)} in {CONFIG_FILE})"
    return where


def read_config_file(cwd: Path) -> tuple[Path, dict[str, Any]]:
    """``peru-compras.toml`` in `cwd` as a table (empty when there is none)."""
    config = cwd / CONFIG_FILE
    if not config.exists():
        return config, {}
    try:
        return config, tomllib.loads(config.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, OSError) as exc:
        raise ConfigurationError(f"{config} is not valid TOML: {exc}", hint="fix or remove the file") from exc


def load_settings(flags: Mapping[str, Any] | None = None, *, env: Mapping[str, str] | None = None,
                  cwd: Path | None = None, read_file: bool = True) -> Settings:
    """Merge flags > `env` (default ``os.environ``) > ``peru-compras.toml`` in `cwd` > defaults; the file is
    skipped when `read_file` is false. Nothing is written anywhere."""
    cwd = cwd or Path.cwd()
    config, file_values = read_config_file(cwd) if read_file else (cwd / CONFIG_FILE, {})
    src = _Sources(flags or {}, os.environ if env is None else env, file_values, config)

    home = Path(src.text("home") or cwd / HOME)
    base_url = (src.text("base_url") or DEFAULT_BASE_URL).rstrip("/")
    if not base_url.startswith(("http://", "https://")):
        raise ConfigurationError(f"base URL {base_url!r} must start with http:// or https://",
                                 hint="set --base-url https://your-page.example")
    gas_price, where = src.pick("gas_price")
    try:
        gas_price_value = int(gas_price) if gas_price is not None and not isinstance(gas_price, bool) else None
    except ValueError:
        raise ConfigurationError(f"gas price {gas_price!r} is not a whole number of wei") from None
    profile = network(src.text("network") or "local")
    forwarder = src.text("trusted_forwarder")
    if forwarder:  # e.g. a test network's own relay; the profiles carry LACNet's published addresses
        profile = replace(profile, trusted_forwarder=check_address(
            forwarder, what="trusted forwarder", setting="--trusted-forwarder / PERU_COMPRAS_TRUSTED_FORWARDER"))
    window, _ = src.pick("expiration_seconds")
    if window is not None:
        try:
            seconds = int(window)
        except (TypeError, ValueError):
            seconds = 0
        if not 10 <= seconds <= 86_400:
            raise ConfigurationError(f"expiration window {window!r} is not 10 to 86400 seconds",
                                     hint="set PERU_COMPRAS_EXPIRATION_SECONDS to e.g. 300")
        profile = replace(profile, expiration_seconds=seconds)
    node_address = src.text("node_address")
    if node_address:
        node_address = check_address(node_address, what="writer node address",
                                     setting="--node-address / PERU_COMPRAS_NODE_ADDRESS")
    model = src.text("lacnet_model") or "relay"
    if model not in LACNET_MODELS:
        raise ConfigurationError(f"LACNet model {model!r} is not one of {', '.join(LACNET_MODELS)}",
                                 hint="set --lacnet-model relay|metatx (PERU_COMPRAS_LACNET_MODEL)")
    if model == "metatx" and not profile.is_lacnet:
        raise ConfigurationError(f"--lacnet-model metatx needs a LACNet profile, not network {profile.name}",
                                 hint="use --network lacnet-protestnet or lacnet-mainnet")
    hub = src.text("metatx_hub")
    if hub:  # LACNet published two test-network hubs (LACNET.md section 2): the profile carries the README's
        profile = replace(profile, metatx_hub=check_address(
            hub, what="PermissionedMetaTxHub", setting="--metatx-hub / PERU_COMPRAS_METATX_HUB"))
    rpcs = src.listed("rpc")
    for url in rpcs:
        problem = node_url_problem(url)
        if problem:  # the URL itself is not shown: a hosted node's may carry an access key
            raise ConfigurationError(f"--rpc / PERU_COMPRAS_RPC: a node URL is not usable: {problem}",
                                     hint="give the node's JSON-RPC URL, e.g. http://127.0.0.1:8545")
    quorum_value, _ = src.pick("rpc_quorum")
    quorum = src.whole("rpc_quorum", 0) if quorum_value is not None else None
    if quorum is not None and quorum > max(len(rpcs), 1):
        raise ConfigurationError(f"PERU_COMPRAS_RPC_QUORUM is {quorum}, more than the {len(rpcs)} node(s) "
                                 "PERU_COMPRAS_RPC lists", hint=f"give 1 to {max(len(rpcs), 1)}, or unset it (all)")
    keystore = src.text("keystore")
    relayer_keystore = src.text("relayer_keystore")
    mirror = src.text("mirror")
    return Settings(
        home=home,
        rpc=rpcs[0] if rpcs else None,
        read_rpcs=rpcs[1:],
        rpc_quorum=quorum,
        registry=src.text("registry"),
        network=profile,
        keystore=Path(keystore) if keystore else None,
        base_url=base_url,
        node_address=node_address,
        gas_price=gas_price_value,
        rpc_token=src.text("rpc_token"),
        lacnet_model=model,
        relayer_keystore=Path(relayer_keystore) if relayer_keystore else None,
        max_pdf_bytes=src.whole("max_pdf_bytes", DEFAULT_MAX_PDF_BYTES, sizes=True),
        max_pdf_pages=src.whole("max_pdf_pages", DEFAULT_MAX_PDF_PAGES),
        max_pdf_decoded_bytes=src.whole("max_pdf_decoded_bytes", DEFAULT_MAX_PDF_DECODED_BYTES, sizes=True),
        fetch_hosts=tuple(dict.fromkeys(host.lower().rstrip(".") for host in src.listed("fetch_hosts"))),
        fetch_max_bytes=src.whole("fetch_max_bytes", DEFAULT_FETCH_MAX_BYTES, sizes=True),
        fetch_timeout=src.seconds("fetch_timeout", DEFAULT_FETCH_TIMEOUT),
        explorer_url=src.text("explorer_url"),
        mirror=Path(mirror) if mirror else None,
        trusted_proxies=",".join(src.listed("trusted_proxies")) or DEFAULT_TRUSTED_PROXIES,
        request_timeout=src.seconds("request_timeout", DEFAULT_REQUEST_TIMEOUT, maximum=_SERVER_MAX),
        keep_alive_timeout=src.whole("keep_alive_timeout", DEFAULT_KEEP_ALIVE_TIMEOUT, maximum=_SERVER_MAX),
        max_connections_per_client=src.whole("max_connections_per_client", DEFAULT_MAX_CONNECTIONS_PER_CLIENT,
                                             maximum=_SERVER_MAX),
    )


def check_address(value: str, *, what: str, setting: str) -> str:
    """`value` as a checksummed address, or one clear ConfigurationError naming the setting."""
    text = value.strip() if isinstance(value, str) else ""
    body = text.removeprefix("0x").removeprefix("0X")
    if not text.lower().startswith("0x") or len(body) != 40 or any(c not in "0123456789abcdefABCDEF" for c in body):
        raise ConfigurationError(f"{what} {value!r} is not an address",
                                 hint=f"set {setting} to 0x followed by 40 hex digits")
    from .chain.abi import to_checksum_address

    try:
        return str(to_checksum_address(text))
    except ValueError:
        raise ConfigurationError(f"{what} {value!r} is not an address",
                                 hint=f"set {setting} to 0x followed by 40 hex digits") from None


# -- the signer's key (read from the environment, never kept in Settings) -----------------------------


def load_private_key(settings: Settings, *, prompt: bool = True) -> Signer | None:
    """The signer from --keystore or PERU_COMPRAS_PRIVATE_KEY, or None when neither is set."""
    return _load_key(settings.keystore, "PERU_COMPRAS_KEYSTORE_PASSWORD", "PERU_COMPRAS_PRIVATE_KEY", prompt=prompt)


def load_relayer_key(settings: Settings, *, prompt: bool = True) -> Signer | None:
    """The metatx relayer from --relayer-keystore or PERU_COMPRAS_RELAYER_PRIVATE_KEY, or None."""
    return _load_key(settings.relayer_keystore, "PERU_COMPRAS_RELAYER_KEYSTORE_PASSWORD",
                     "PERU_COMPRAS_RELAYER_PRIVATE_KEY", prompt=prompt)


def account_from_key(key: bytes) -> Signer:
    """The signer for a 32-byte key (:class:`~peru_compras.chain.keys.Signer`: no eth-account, so no
    eth-keyfile and py_ecc loaded; only a keystore needs them)."""
    from .chain.keys import Signer

    return Signer(key)


def _decrypt_keystore(keyfile: dict[str, Any], password: str) -> bytes:
    from eth_account import Account

    key: bytes = Account.decrypt(keyfile, password)
    return key


def _load_key(keystore: Path | None, password_variable: str, key_variable: str, *,
              prompt: bool) -> Signer | None:
    """An account from a V3 keystore (password in `password_variable`, else asked) or from the hex key in
    `key_variable`; None when neither is set. No message carries the key."""
    import json

    if keystore is not None:
        try:
            keyfile = json.loads(keystore.read_text())
        except (OSError, ValueError) as exc:
            raise ConfigurationError(f"cannot read keystore {str(keystore)!r}",
                                     hint="give a V3 JSON keystore file") from exc
        if not isinstance(keyfile, dict) or not isinstance(keyfile.get("crypto", keyfile.get("Crypto")), dict):
            raise ConfigurationError(f"{str(keystore)!r} is JSON but not a keystore (no \"crypto\" section)",
                                     hint="give a V3 JSON keystore file, e.g. made by Account.encrypt")
        password = os.environ.get(password_variable)
        if password is None:
            if not prompt:
                raise ConfigurationError("no keystore password",
                                         hint=f"set {password_variable} or run interactively")
            import getpass

            password = getpass.getpass(f"Password for {keystore}: ")
        try:
            key = _decrypt_keystore(keyfile, password)
        except (ValueError, KeyError, TypeError):
            raise ConfigurationError(f"cannot decrypt keystore {str(keystore)!r}",
                                     hint=f"check the password ({password_variable})") from None
        return account_from_key(key)
    raw = os.environ.get(key_variable)
    if raw is None:
        return None
    text = raw.strip().removeprefix("0x")
    if len(text) != 64 or any(c not in "0123456789abcdefABCDEF" for c in text):
        raise ConfigurationError(f"{key_variable} is not a private key (expected 64 hex digits)",
                                 hint="fix the variable (its value is not shown)")
    try:
        return account_from_key(bytes.fromhex(text))
    except Exception:  # noqa: BLE001 — out of the curve's range: say so without the value
        raise ConfigurationError(f"{key_variable} is out of range for secp256k1",
                                 hint="generate a new key") from None
