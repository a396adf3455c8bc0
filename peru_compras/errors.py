"""Every error peru-compras raises, with the exit code the command line gives it.

Each message names the bad value and says what to do next. Every module raises these (the modules named
in brackets re-export theirs under the old names). The tree::

    PeruComprasError                         exit 1
    ├── InvalidInput (ValueError)            exit 2  bad usage, file or record
    │   ├── InvalidOrder                     every broken field of a record, each named
    │   ├── InvalidJSON                      JSON from outside: too large, too deep, repeated key, bad syntax
    │   ├── InvalidDocument                  a PDF that cannot be accepted
    │   ├── ConfigurationError               settings, keys, addresses (a bad setting, whatever it sets)
    │   └── FetchRefused [fetch]             the download rules forbid it (host, local address, size)
    │       └── FetchTooLarge [fetch]        over the size limit
    ├── NodeUnavailable (ConnectionError)    exit 3  the node or a service cannot be reached
    │   ├── FetchFailed [fetch]              the published document could not be downloaded
    │   ├── NotChecked [chain.quorum]        the nodes did not agree: "could not be checked"
    │   └── Unavailable [web]                the page could not read the chain (it answers 503)
    ├── InvalidNodeAnswer                    exit 1  the node answered something that is not JSON-RPC
    ├── RpcError [chain.rpc]                 exit 1  the node answered a request with a JSON-RPC error
    ├── DocumentMissing [fetch]              exit 1  the published document is gone (HTTP 404 / 410)
    └── ChainRefused (RuntimeError)          exit 1  the chain (or the relay) said no
        ├── OrderAlreadyRegistered           same entity and order number, or same document
        ├── OrderNotRegistered (LookupError)
        ├── OrderNotValid                    annulled or superseded
        ├── NotAuthorized (PermissionError)  the signer lacks a role
        ├── RegistryPaused
        ├── MalformedOrder
        ├── UnreadableRecord                 an on-chain entry that does not decode to a valid record
        ├── InvalidReason
        ├── TokenLocked
        └── RelayRefused                     LACNet's relay refused the transaction
            └── HubRefused [chain.lacnet]    the hub did not run our call (its ErrorCode)
"""

from __future__ import annotations


class PeruComprasError(Exception):
    """Root of every peru-compras error. `exit_code` is what the CLI exits with."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} — {self.hint}" if self.hint else self.message


class InvalidInput(PeruComprasError, ValueError):
    """Bad usage, an unreadable or invalid file or record."""

    exit_code = 2


class InvalidOrder(InvalidInput):
    """A record broke one or more rules; `problems` lists each as `field: value — rule`."""

    def __init__(self, problems: list[str], *, source: str | None = None) -> None:
        where = f"{source}: " if source else ""
        count = len(problems)
        head = f"{where}invalid order ({count} problem{'s' if count != 1 else ''}): " + "; ".join(problems)
        super().__init__(head, hint="fix these fields and run the command again")
        self.problems = problems


class InvalidJSON(InvalidInput):
    """JSON from outside that cannot be read safely: over its size or nesting limit, a repeated key,
    a number too long, or bad syntax (see :mod:`peru_compras.safejson`)."""


class InvalidDocument(InvalidInput):
    """A PDF that cannot be accepted (not a PDF, damaged, encrypted, too large, ...)."""


class ConfigurationError(InvalidInput):
    """A setting, key or address is missing or malformed."""


class NodeUnavailable(PeruComprasError, ConnectionError):
    """The node (or another service) cannot be reached."""

    exit_code = 3


class FetchRefused(InvalidInput):
    """The download rules forbid this download (host not allowed, local address, too large, ...); see
    :mod:`peru_compras.fetch`."""


class FetchTooLarge(FetchRefused):
    """The published document is over the size limit; `size` is how many bytes were declared or read."""

    def __init__(self, message: str, *, size: int, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.size = size


class FetchFailed(NodeUnavailable):
    """The published document could not be downloaded (unreachable, too slow, HTTP error)."""


class Unavailable(NodeUnavailable):
    """The verification page could not read the chain (it answers 503 and says so)."""


class NotChecked(NodeUnavailable):
    """The nodes did not give one answer `quorum` of them agree on: `node` (its host) and `reason`
    (see :mod:`peru_compras.chain.quorum`)."""

    def __init__(self, message: str, *, node: str, reason: str) -> None:
        super().__init__(f"could not be checked: {message}",
                         hint="check PERU_COMPRAS_RPC's nodes, or lower PERU_COMPRAS_RPC_QUORUM")
        self.node = node
        self.reason = reason


class DocumentMissing(PeruComprasError):
    """The server says the document is not there (HTTP 404 or 410)."""


class RpcError(PeruComprasError):
    """The node answered a request with a JSON-RPC error: `method`, `code`, the node's `message` and `data`."""

    def __init__(self, method: str, code: int, message: str, data: object) -> None:
        super().__init__(f"{method}: {message} (code {code})")
        self.method = method
        self.code = code
        self.message = message  # the node's own words (callers match on them), not the whole line
        self.data = data

    def __str__(self) -> str:
        return f"{self.method}: {self.message} (code {self.code})"

    @property
    def revert_data(self) -> bytes | None:
        """The revert payload, when the error carries one (eth_call / eth_estimateGas)."""
        data = self.data
        if isinstance(data, dict):
            data = data.get("data")
        if isinstance(data, str) and data.startswith("0x"):
            try:
                return bytes.fromhex(data[2:])
            except ValueError:
                return None
        return None


class InvalidNodeAnswer(PeruComprasError):
    """The node answered, but not with JSON-RPC: not JSON, too large or deep, not an object, neither a
    result nor an error, or a malformed value where hex is expected (see :mod:`peru_compras.chain.rpc`)."""


class ChainRefused(PeruComprasError, RuntimeError):
    """The chain refused an operation (a contract revert or a relay refusal)."""


class OrderAlreadyRegistered(ChainRefused):
    """An order with the same entity and number, or the same document, is already registered."""

    def __init__(self, message: str, *, token_id: int, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.token_id = token_id


class OrderNotRegistered(ChainRefused, LookupError):
    """No registered order matches."""


class OrderNotValid(ChainRefused):
    """The order is annulled or superseded."""


class NotAuthorized(ChainRefused, PermissionError):
    """The signer lacks the role the operation needs."""


class RegistryPaused(ChainRefused):
    """The registry is paused by its admin."""


class MalformedOrder(ChainRefused):
    """The contract could not parse an order entry (a client bug or a hand-made call)."""


class UnreadableRecord(ChainRefused):
    """A token's on-chain entry does not decode to a valid record (a registrar's key sent raw bytes)."""

    def __init__(self, message: str, *, token_id: int, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.token_id = token_id


class InvalidReason(ChainRefused):
    """An annulment reason is empty or longer than 1,000 bytes."""


class TokenLocked(ChainRefused):
    """Tokens are locked (ERC-5192): they never move."""


class RelayRefused(ChainRefused):
    """LACNet's relay hub refused the transaction (bad nonce, signature, gas, ...)."""


class HubRefused(RelayRefused):
    """The hub did not run our call: `code` is its ErrorCode (NotEnoughGas also when it returned early,
    before any event)."""

    def __init__(self, message: str, *, code: int, hint: str | None = None, block: int | None = None) -> None:
        super().__init__(message, hint=hint)
        self.code = code
        self.block = block  # the block of the hub transaction that said so, when there was one


def setting_key(variable: str) -> str:
    """A setting's key in peru-compras.toml: ``PERU_COMPRAS_MAX_PDF_BYTES`` → ``max-pdf-bytes``."""
    return variable.removeprefix("PERU_COMPRAS_").lower().replace("_", "-")


def setting_source(variable: str) -> str:
    """Where a setting read from an environment variable may come from, for messages."""
    return f"{variable} (or {setting_key(variable)} in peru-compras.toml)"
