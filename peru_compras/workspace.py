"""Where the use cases (:mod:`.service`) get their node, registry, signer and document store.

:class:`Session` is what a back-office program needs: settings (flags > environment > ``peru-compras.toml``
> defaults), the node (``rpc``), the registry, the transaction sender (``transactor``: the signer's key from
a keystore or ``PERU_COMPRAS_PRIVATE_KEY``), the document store and the base URL every QR opens. Each part
is built on first use, from the settings or from what the caller passes in; building one never starts a
process or writes a file.

:class:`Workspace` is the command line's composition root: a Session tied to a state folder (``home``),
which adds this folder's local chain (Anvil, started only by :meth:`Workspace.start_writing`), the embedded
signer, the registry remembered per chain in ``deployment.json`` and the background page server.

The private key is never printed, logged or put in an exception message.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from .errors import ConfigurationError
from .settings import Settings, load_private_key, load_relayer_key, load_settings

#: an account or contract address (the checksum's letter case is not checked here; the node reads any case)
_ADDRESS = re.compile(r"(0[xX])?[0-9a-fA-F]{40}")

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from .chain.client import Registry
    from .chain.keys import Signer
    from .chain.node import ChainInfo, FolderChain
    from .chain.rpc import Rpc
    from .chain.transactions import Transactor
    from .order import Order
    from .store import DocumentStore, LocalStore

    #: what signs an order's QR: the fragment after "#" (see :mod:`.signed_qr`), or None for a plain QR
    QrFragment = Callable[[Order], str | None]


class Session:
    """A node, a registry, a document store and (to write) a signer: what :mod:`.service` works with.

    ``Session()`` reads the settings as the command line does; pass `settings` (see
    :func:`~peru_compras.settings.load_settings`) or ready parts (`rpc`, `transactor`, `store`) to choose.
    `qr_signer` (a :class:`~peru_compras.signed_qr.QrSigner`) signs the QR of the orders registered.
    """

    def __init__(self, settings: Settings | None = None, *, rpc: Rpc | None = None,
                 transactor: Transactor | None = None, store: DocumentStore | None = None,
                 qr_signer: QrFragment | None = None) -> None:
        self.settings = settings if settings is not None else load_settings()
        self._rpc = rpc if rpc is not None else (transactor.rpc if transactor is not None else None)
        self._transactor = transactor
        self._store = store
        self._account: Signer | None = None
        self._registries: dict[bool, Registry] = {}
        self._qr_signer = qr_signer

    @property
    def base_url(self) -> str:
        """The public address of the verification page (no trailing slash)."""
        return self.settings.base_url

    # -- the node and the signer -----------------------------------------------------------------------

    @property
    def rpc(self) -> Rpc:
        """The node reads go to (``--rpc`` / ``PERU_COMPRAS_RPC``; when it lists several, all of them as one, see
        :mod:`.chain.quorum`)."""
        if self._rpc is None:
            urls = self.settings.rpc_urls
            if len(urls) > 1:  # H7: several nodes read as one (chain/quorum.py, issue 17 item 5)
                from .chain.quorum import read_rpc

                token = self.settings.rpc_token
                self._rpc = read_rpc(urls, quorum=self.settings.rpc_quorum,
                                     headers={"Authorization": f"Bearer {token}"} if token else None)
            else:
                self._rpc = self._make_rpc(self._rpc_url())
        return self._rpc

    def _write_rpc(self) -> Rpc:
        """The node transactions go to: the first one (reads through several never send)."""
        from .chain.quorum import QuorumRpc

        rpc = self.rpc
        return rpc.nodes[0] if isinstance(rpc, QuorumRpc) else rpc

    def _rpc_url(self) -> str:
        if self.settings.rpc:
            return self.settings.rpc
        raise ConfigurationError(f"no node configured for the {self.settings.network.name} profile",
                                 hint="set --rpc URL or PERU_COMPRAS_RPC")

    def _make_rpc(self, url: str) -> Rpc:
        from .chain.rpc import Rpc

        token = self.settings.rpc_token
        return Rpc(url, headers={"Authorization": f"Bearer {token}"} if token else None)

    def account(self) -> Signer:
        """The signer: ``--keystore`` (its password in ``PERU_COMPRAS_KEYSTORE_PASSWORD``, else asked) or
        ``PERU_COMPRAS_PRIVATE_KEY``."""
        if self._account is None:
            account = load_private_key(self.settings)
            if account is None:
                raise ConfigurationError(f"no signer configured for {self.settings.rpc or self.settings.network.name}",
                                         hint="set --keystore FILE or PERU_COMPRAS_PRIVATE_KEY")
            self._account = account
        return self._account

    @property
    def transactor(self) -> Transactor:
        """The signer's transaction sender (for the metatx model, through the relayer)."""
        if self._transactor is None:
            account = self.account()  # a bad key or keystore fails here, before the node is asked anything
            if self.settings.lacnet_model == "metatx":
                from .chain.metatx import MetaTxTransactor

                relayer = load_relayer_key(self.settings)
                if relayer is None:
                    raise ConfigurationError("--lacnet-model metatx needs the relayer's key",
                                             hint="set --relayer-keystore FILE (PERU_COMPRAS_RELAYER_KEYSTORE_PASSWORD)"
                                                  " or PERU_COMPRAS_RELAYER_PRIVATE_KEY")
                self._transactor = MetaTxTransactor(self._write_rpc(), account, relayer, self.settings.network)
            else:
                from .chain.transactions import Transactor

                self._transactor = Transactor(self._write_rpc(), account, self.settings.network,
                                              node_address=self.settings.node_address,
                                              gas_price=self.settings.gas_price)
        return self._transactor

    def start_writing(self) -> Transactor:
        """Be ready to send: the signer checked and its sender built. (A :class:`Workspace` also starts its
        folder's local chain here.)"""
        return self.transactor

    def qr_signer(self) -> QrFragment | None:
        """What signs the QR of the orders this session registers (issue 17's signed QR): the one given, else
        the registrar's key for this chain and registry (:class:`~peru_compras.signed_qr.QrSigner`). Calling it
        means "about to register": like :meth:`start_writing`, it may start a Workspace's local chain."""
        if self._qr_signer is None:
            from .signed_qr import QrSigner

            registry = self.registry(write=True)
            key = getattr(self.transactor.account, "key", None)  # the registrar's: Signer, or eth-account's
            if not isinstance(key, bytes):  # a signer that does not show its key (a vault): plain QRs
                return None
            self._qr_signer = QrSigner(bytes(key), self.transactor.chain_id, registry.address)
        return self._qr_signer

    # -- the registry ----------------------------------------------------------------------------------

    def registry(self, *, write: bool = False) -> Registry:
        """The configured registry (``--registry`` / ``PERU_COMPRAS_REGISTRY``), checked to be deployed; with
        `write`, able to send (see :meth:`start_writing`)."""
        found = self._registries.get(write)
        if found is not None:
            return found
        from .chain.client import Registry

        signer = self.start_writing() if write else None
        address, from_block = self.settings.registry, 0
        remembered = self.remembered_registry()
        if remembered and (address is None or str(remembered["registry"]).lower() == address.lower()):
            address = address or str(remembered["registry"])
            from_block = int(remembered.get("from_block", 0))
        if address is None:
            raise ConfigurationError("no registry configured for this chain",
                                     hint="deploy one with `peru-compras deploy`, or set --registry 0x…")
        if not _ADDRESS.fullmatch(address):
            raise ConfigurationError(f"registry {address!r} is not an address",
                                     hint="give 0x followed by 40 hex digits")
        registry = Registry(self.rpc, address, transactor=signer, from_block=from_block)
        registry.check_deployed()
        self._registries[write] = registry
        return registry

    def remembered_registry(self, chain_id: int | None = None) -> dict[str, Any] | None:
        """The registry deployed earlier on chain `chain_id` (default: the node's), when something remembers
        it (a Workspace does, in deployment.json); a plain Session remembers nothing."""
        return None

    def remember_deployment(self, registry: Registry, chain_id: int) -> None:
        """Keep `registry` as this chain's (a Session keeps nothing; a Workspace writes deployment.json)."""
        self._registries.clear()

    # -- documents -------------------------------------------------------------------------------------

    @property
    def store(self) -> DocumentStore:
        """Where registered PDFs are kept and published (default: ``<home>/documents``, served at ``/d/``)."""
        if self._store is None:
            from .store import LocalStore

            self._store = LocalStore(self.settings.home / "documents", self.base_url)
        return self._store

    def verify_url(self, path: str) -> str:
        """The base URL + `path` (an order's ``verify_path``), refused over 80 characters (the QR limit)."""
        from .urls import check_verify_url

        return check_verify_url(self.base_url + path)


class Workspace(Session):
    """A Session tied to a state folder: its local chain, embedded signer, remembered registry and page."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self._local_store: LocalStore | None = None
        #: the command that may start this folder's chain (shown by `peru-compras status`)
        self.started_by = "peru-compras"
        #: True once this workspace has started the chain in the background
        self.started_chain = False
        self._embedded_signer = False

    @property
    def home(self) -> Path:
        return self.settings.home

    @property
    def store(self) -> LocalStore:
        """This folder's document store, ``<home>/documents``."""
        if self._local_store is None:
            from .store import LocalStore

            self._local_store = LocalStore(self.home / "documents", self.base_url)
            self._store = self._local_store
        return self._local_store

    # -- the local chain -------------------------------------------------------------------------------

    @property
    def node_file(self) -> Path:
        return self.home / "node.json"

    @property
    def chain(self) -> FolderChain:
        """This folder's local chain (the embedded default's): one per state folder. Looking starts nothing."""
        from .chain.node import FolderChain

        return FolderChain(self.home)

    def start_local_chain(self) -> ChainInfo | None:
        """Before writing: on the embedded default, this folder's chain, started in the background when it
        is not running (`peru-compras stop` ends it). Commands that only read never call this."""
        if not self.settings.is_embedded:
            return None
        info, started = self.chain.ensure_running(started_by=self.started_by)
        self.started_chain = self.started_chain or started
        if self._rpc is None:
            self._rpc = self._make_rpc(info.rpc)
        return info

    def own_chain(self, url: str | None) -> bool:
        """True when `url` is this folder's running local chain (a loopback address on its port)."""
        if url is None:
            return False
        parts = urlsplit(url)
        info = self.chain.running()
        return (info is not None and parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost")
                and parts.port == info.port)

    def _rpc_url(self) -> str:
        """On the embedded default: this folder's chain if it runs (it is never started here)."""
        if not self.settings.rpc and self.settings.is_embedded:
            info = self.chain.running()
            if info is None:
                raise self.chain.not_running()
            return info.rpc
        return super()._rpc_url()

    # -- the signer ------------------------------------------------------------------------------------

    def account(self) -> Signer:
        """The configured signer, else (on this folder's own local chain only) the embedded one."""
        if self._account is None:
            account = load_private_key(self.settings)
            if account is None:
                if not (self.settings.is_embedded or (self.settings.network.name == "local"
                                                      and self.own_chain(self.settings.rpc))):
                    raise ConfigurationError(
                        f"no signer configured for {self.settings.rpc or self.settings.network.name}: the embedded "
                        f"signer ({self.home / 'local-signer.key'}) signs only on this folder's local chain",
                        hint="set --keystore FILE or PERU_COMPRAS_PRIVATE_KEY, or leave out --rpc")
                account = self._local_dev_account()
                self._embedded_signer = True
            self._account = account
        return self._account

    def _local_dev_account(self) -> Signer:
        """The embedded chain's signer: a key made here once (file mode 0600)."""
        import secrets

        from .settings import account_from_key

        path = self.home / "local-signer.key"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_hex(32))
        return account_from_key(bytes.fromhex(path.read_text().strip()))

    def start_writing(self) -> Transactor:
        """Be ready to send: the signer checked (a bad key or keystore fails before any chain is started),
        then, on the embedded default, this folder's chain started and the embedded signer funded."""
        if self._transactor is None:
            account = self.account()
            self.start_local_chain()
            if self._embedded_signer:
                from .chain.node import set_balance

                set_balance(self.rpc, account.address, 10**24)
        return self.transactor

    # -- the registry ----------------------------------------------------------------------------------

    @property
    def deployment_file(self) -> Path:
        return self.home / "deployment.json"

    def remembered_registry(self, chain_id: int | None = None) -> dict[str, Any] | None:
        """What deployment.json keeps for `chain_id` (default: the node's): registry, from_block, rpc."""
        if chain_id is None:
            chain_id = int(self.rpc.call("eth_chainId"), 16)
        found = _read_json(self.deployment_file).get(str(chain_id))
        return found if isinstance(found, dict) else None

    def remember_deployment(self, registry: Registry, chain_id: int) -> None:
        data = _read_json(self.deployment_file)
        data[str(chain_id)] = {"registry": registry.address, "from_block": registry.from_block,
                               "rpc": self.rpc.url}
        from .store import write_atomic

        write_atomic(self.deployment_file, (json.dumps(data, indent=2) + "\n").encode())
        super().remember_deployment(registry, chain_id)

    # -- the page server the demo leaves running --------------------------------------------------------

    @contextlib.contextmanager
    def serving_page(self, host: str, port: int) -> Iterator[None]:
        """While the page is served here: ``<home>/web.json`` names this process (so that `status` shows it
        and `stop` ends it); removed afterwards unless another server has replaced it."""
        record = self.home / "web.json"
        shown = f"[{host}]" if ":" in host else host
        from .store import write_atomic

        record.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(record, (json.dumps({"url": f"http://{shown}:{port}", "pid": os.getpid(), "host": host,
                                          "port": port}) + "\n").encode())
        try:
            yield
        finally:
            with contextlib.suppress(OSError, ValueError):
                if json.loads(record.read_text()).get("pid") == os.getpid():
                    record.unlink()

    def page_server(self) -> dict[str, Any] | None:
        """The background page server recorded in ``<home>/web.json``, while its process lives."""
        from .chain.node import pid_alive

        known = _read_json(self.home / "web.json")
        try:
            return known if pid_alive(int(known["pid"])) else None
        except (KeyError, TypeError, ValueError):
            return None

    def stop_page_server(self, *, grace: float = 10.0) -> dict[str, Any] | None:
        """Stop the background page server and wait for it to end; what was running, or None."""
        import signal
        import time

        from .chain.node import pid_alive
        from .web.server import stop_detached

        page = self.page_server()
        if page is None or not stop_detached(self.home):
            return None
        pid = int(page["pid"])
        deadline = time.monotonic() + grace
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if pid_alive(pid):
            os.kill(pid, signal.SIGKILL)
        return page


def _read_json(path: Path) -> dict[str, Any]:
    """A JSON object kept in this folder, or {} when the file is missing or unreadable."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
