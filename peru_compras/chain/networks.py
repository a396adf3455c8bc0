"""Network profiles: what kind of transaction each network takes.

- ``local``: Anvil (or any dev node); EIP-1559 when the node reports a base fee, else legacy.
- ``besu``: a Hyperledger Besu network: legacy transactions, gas price from settings (default 0),
  chain id from the node.
- ``lacnet-protestnet`` / ``lacnet-mainnet``: LACNet's gas model (LACNET.md): legacy, gas price 0, signed
  with chain id 0, calldata followed by ``abi.encode(nodeAddress, expiration)``, RelayHub as the caller; or,
  with ``--lacnet-model metatx``, LACNet's open-standards model (:mod:`.metatx`): a relayer account sends the
  registrar's EIP-712-signed Forward to the ERC-2771 hub ``metatx_hub``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..errors import ConfigurationError

TxKind = Literal["auto", "legacy", "lacnet"]


@dataclass(frozen=True, slots=True)
class Network:
    """How to talk to one kind of network."""

    name: str
    kind: TxKind
    chain_id: int | None = None
    gas_price: int = 0
    trusted_forwarder: str | None = None
    #: seconds a LACNet transaction stays valid after signing
    expiration_seconds: int = 300
    #: the open-standards model's ERC-2771 PermissionedMetaTxHub (LACNET.md section 2); a new registry trusts it
    metatx_hub: str | None = None

    @property
    def is_lacnet(self) -> bool:
        return self.kind == "lacnet"


PROFILES: dict[str, Network] = {
    "local": Network("local", "auto"),
    "besu": Network("besu", "legacy"),
    "lacnet-protestnet": Network(
        "lacnet-protestnet", "lacnet", 648540, trusted_forwarder="0xa4B5eE2906090ce2cDbf5dfff944db26f397037D",
        metatx_hub="0x9a49A9e7b5b07CDd6218624687D3C9FD30e853Bd",
    ),
    "lacnet-mainnet": Network(
        "lacnet-mainnet", "lacnet", 648541, trusted_forwarder="0xEAA5420AF59305c5ecacCB38fcDe70198001d147",
        metatx_hub="0x1B5c82C4093D2422699255f59f3B8A33c4a37773",
    ),
}


def network(name: str) -> Network:
    """The profile called `name`."""
    try:
        return PROFILES[name]
    except KeyError:
        raise ConfigurationError(
            f"unknown network profile {name!r}", hint="use one of: " + ", ".join(PROFILES)
        ) from None
