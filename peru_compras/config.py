"""Settings: flags, else environment variables, else ``peru-compras.toml`` in the working directory, else
the embedded default (a local chain and document store under ``./.peru-compras/``).

:class:`~peru_compras.workspace.Workspace` (moved to workspace.py, still importable from here) turns
settings into the objects commands need. The private key is never printed, logged or put in an exception
message.
"""

from __future__ import annotations

import json
import os
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from eth_account import Account
from eth_account.signers.local import LocalAccount

from .chain.lacnet import check_address
from .chain.networks import Network, network
from .errors import ConfigurationError, setting_key

HOME = ".peru-compras"
CONFIG_FILE = "peru-compras.toml"
DEFAULT_BASE_URL = "http://127.0.0.1:8000"
MAX_VERIFY_URL = 80

_ENV = {
    "rpc": "PERU_COMPRAS_RPC",
    "registry": "PERU_COMPRAS_REGISTRY",
    "network": "PERU_COMPRAS_NETWORK",
    "keystore": "PERU_COMPRAS_KEYSTORE",
    "base_url": "PERU_COMPRAS_BASE_URL",
    "node_address": "PERU_COMPRAS_NODE_ADDRESS",
    "gas_price": "PERU_COMPRAS_GAS_PRICE",
    "rpc_token": "PERU_COMPRAS_RPC_TOKEN",
    "trusted_forwarder": "PERU_COMPRAS_TRUSTED_FORWARDER",
    "expiration_seconds": "PERU_COMPRAS_EXPIRATION_SECONDS",
    "lacnet_model": "PERU_COMPRAS_LACNET_MODEL",
    "metatx_hub": "PERU_COMPRAS_METATX_HUB",
    "relayer_keystore": "PERU_COMPRAS_RELAYER_KEYSTORE",
}
LACNET_MODELS = ("relay", "metatx")

# Settings read where they are used (the PDF limits in batch worker processes, the fetch policy, the
# page's explorer link), from their environment variables: peru-compras.toml fills a variable left unset.
_FILE_ONLY_ENV = {setting_key(variable): variable for variable in (
    "PERU_COMPRAS_MAX_PDF_BYTES", "PERU_COMPRAS_MAX_PDF_PAGES", "PERU_COMPRAS_FETCH_HOSTS",
    "PERU_COMPRAS_FETCH_MAX_BYTES", "PERU_COMPRAS_FETCH_TIMEOUT", "PERU_COMPRAS_EXPLORER_URL")}


@dataclass
class Settings:
    """Resolved settings. `home` holds the local chain, deployment record, documents and journal."""

    home: Path
    rpc: str | None = None
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

    @property
    def is_embedded(self) -> bool:
        """True when using the embedded local chain (no --rpc given)."""
        return self.rpc is None and self.network.name == "local"


def load_settings(flags: dict[str, Any] | None = None, *, cwd: Path | None = None) -> Settings:
    """Merge flags > environment > peru-compras.toml > defaults."""
    cwd = cwd or Path.cwd()
    file_values: dict[str, Any] = {}
    config = cwd / CONFIG_FILE
    if config.exists():
        try:
            file_values = tomllib.loads(config.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigurationError(f"{config} is not valid TOML: {exc}", hint="fix or remove the file") from exc
    flags = flags or {}
    for key, variable in _FILE_ONLY_ENV.items():
        value = file_values.get(key, file_values.get(key.replace("-", "_")))
        if value is not None and not os.environ.get(variable):
            os.environ[variable] = (",".join(str(v) for v in value) if isinstance(value, list) else str(value))

    def pick(name: str) -> Any:
        if flags.get(name) not in (None, ""):
            return flags[name]
        env = os.environ.get(_ENV.get(name, ""), "")
        if env:
            return env
        return file_values.get(name.replace("_", "-"), file_values.get(name))

    home = Path(pick("home") or cwd / HOME)
    base_url = str(pick("base_url") or DEFAULT_BASE_URL).rstrip("/")
    if not base_url.startswith(("http://", "https://")):
        raise ConfigurationError(f"base URL {base_url!r} must start with http:// or https://",
                                 hint="set --base-url https://your-page.example")
    gas_price = pick("gas_price")
    try:
        gas_price_value = int(gas_price) if gas_price is not None else None
    except ValueError:
        raise ConfigurationError(f"gas price {gas_price!r} is not a whole number of wei") from None
    keystore = pick("keystore")
    profile = network(str(pick("network") or "local"))
    forwarder = pick("trusted_forwarder")
    if forwarder:  # e.g. a test network's own relay; the profiles carry LACNet's published addresses
        profile = replace(profile, trusted_forwarder=check_address(
            str(forwarder), what="trusted forwarder", setting="--trusted-forwarder / PERU_COMPRAS_TRUSTED_FORWARDER"))
    window = pick("expiration_seconds")
    if window is not None:
        try:
            seconds = int(window)
        except ValueError:
            seconds = 0
        if not 10 <= seconds <= 86_400:
            raise ConfigurationError(f"expiration window {window!r} is not 10 to 86400 seconds",
                                     hint="set PERU_COMPRAS_EXPIRATION_SECONDS to e.g. 300")
        profile = replace(profile, expiration_seconds=seconds)
    node_address = pick("node_address")
    if node_address:
        node_address = check_address(str(node_address), what="writer node address",
                                     setting="--node-address / PERU_COMPRAS_NODE_ADDRESS")
    model = str(pick("lacnet_model") or "relay")
    if model not in LACNET_MODELS:
        raise ConfigurationError(f"LACNet model {model!r} is not one of {', '.join(LACNET_MODELS)}",
                                 hint="set --lacnet-model relay|metatx (PERU_COMPRAS_LACNET_MODEL)")
    if model == "metatx" and not profile.is_lacnet:
        raise ConfigurationError(f"--lacnet-model metatx needs a LACNet profile, not network {profile.name}",
                                 hint="use --network lacnet-protestnet or lacnet-mainnet")
    hub = pick("metatx_hub")
    if hub:  # LACNet published two test-network hubs (LACNET.md section 2): the profile carries the README's
        profile = replace(profile, metatx_hub=check_address(
            str(hub), what="PermissionedMetaTxHub", setting="--metatx-hub / PERU_COMPRAS_METATX_HUB"))
    relayer_keystore = pick("relayer_keystore")
    return Settings(
        home=home,
        rpc=pick("rpc"),
        registry=pick("registry"),
        network=profile,
        keystore=Path(keystore) if keystore else None,
        base_url=base_url,
        node_address=node_address,
        gas_price=gas_price_value,
        rpc_token=pick("rpc_token"),
        lacnet_model=model,
        relayer_keystore=Path(relayer_keystore) if relayer_keystore else None,
    )


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads(path.read_text())
        return data
    except (OSError, ValueError):
        return {}


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)


def load_private_key(settings: Settings, *, prompt: bool = True) -> LocalAccount | None:
    """The signer from --keystore or PERU_COMPRAS_PRIVATE_KEY, or None when neither is set."""
    return _load_key(settings.keystore, "PERU_COMPRAS_KEYSTORE_PASSWORD", "PERU_COMPRAS_PRIVATE_KEY", prompt=prompt)


def load_relayer_key(settings: Settings, *, prompt: bool = True) -> LocalAccount | None:
    """The metatx relayer from --relayer-keystore or PERU_COMPRAS_RELAYER_PRIVATE_KEY, or None."""
    return _load_key(settings.relayer_keystore, "PERU_COMPRAS_RELAYER_KEYSTORE_PASSWORD",
                     "PERU_COMPRAS_RELAYER_PRIVATE_KEY", prompt=prompt)


def _load_key(keystore: Path | None, password_variable: str, key_variable: str, *,
              prompt: bool) -> LocalAccount | None:
    """An account from a V3 keystore (password in `password_variable`, else asked) or from the hex key in
    `key_variable`; None when neither is set. No message carries the key."""
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
            key = Account.decrypt(keyfile, password)
        except (ValueError, KeyError, TypeError):
            raise ConfigurationError(f"cannot decrypt keystore {str(keystore)!r}",
                                     hint=f"check the password ({password_variable})") from None
        account: LocalAccount = Account.from_key(key)
        return account
    raw = os.environ.get(key_variable)
    if raw is None:
        return None
    text = raw.strip().removeprefix("0x")
    if len(text) != 64 or any(c not in "0123456789abcdefABCDEF" for c in text):
        raise ConfigurationError(f"{key_variable} is not a private key (expected 64 hex digits)",
                                 hint="fix the variable (its value is not shown)")
    try:
        from_env: LocalAccount = Account.from_key(bytes.fromhex(text))
        return from_env
    except Exception:  # noqa: BLE001 — out of the curve's range: say so without the value
        raise ConfigurationError(f"{key_variable} is out of range for secp256k1",
                                 hint="generate a new key") from None


if TYPE_CHECKING:
    from .workspace import Workspace as Workspace


def __getattr__(name: str) -> Any:
    """``Workspace`` moved to :mod:`.workspace`; still importable from here (loaded on use: no cycle)."""
    if name == "Workspace":
        from .workspace import Workspace

        return Workspace
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
