"""Batch registration: manifests in, one JSON line per order out, never losing or doubling an order
(:mod:`.registrar`: the main process; :mod:`.workers`: preparing each row; :mod:`.preview`: ``--dry-run``).

Rows come from :mod:`peru_compras.manifest` (JSON Lines, CSV, OCDS); worker processes prepare each order with
:func:`peru_compras.service.prepare` (validate, stamp, hash) and append its document to a pack of the store;
the main process sends batches of them through :class:`~peru_compras.chain.transactions.Transactor`, keeping
every step in the write-ahead :mod:`peru_compras.journal`:

``ready``      validated, stamped and stored; its on-chain entry kept
``signed``     in a transaction whose raw bytes and nonce are committed *before* it is sent
``confirmed``  the receipt says so (block, gas)

A restart first reconciles every ``signed`` transaction with the chain: a receipt confirms its orders; a
transaction the node does not know is re-sent byte for byte (the same hash and nonce, so it cannot be
mined twice); one that can no longer be mined (its nonce taken) sends its orders back to ``ready`` after
checking each on chain. So a crash at any instant neither skips nor doubles an order; the contract's
uniqueness rule is only the last line of defence. Each batch is first simulated (``eth_estimateGas``): an
order the chain would refuse is reported on its own line and the rest go on.

On LACNet the hash the writer node returns is its relay transaction's, not the hash of the signed bytes: the
journal renames the transaction once the node has answered. The gas limit is the node's estimate with a
margin. When the hub did not run a transaction because the node's gas allowance for the block was used up
(NotEnoughGas), or a later one of ours then failed its nonce (BadNonce), its orders go back to ``ready`` and
are sent again in a new transaction a few blocks later (at most :data:`RELAY_RETRIES` rounds in a row); a
``BAD NONCE`` from the relay at sending settles what is in flight, re-reads the nonce and signs again (at most
``NONCE_RESYNCS`` times). Any other refusal, or one retried too often, sends every order of the transactions
in flight back to ``ready`` (unless the chain has it) and stops the run with one line: running it again
retries them.
"""

from __future__ import annotations

from ..journal import Journal
from ..manifest import count_rows, manifest_kind, pdf_inside, read_manifest
from ..rows import Row
from .preview import Summary, preview
from .registrar import RELAY_RETRIES, BatchRegistrar
from .workers import Prepared, prepare

__all__ = ["RELAY_RETRIES", "BatchRegistrar", "Journal", "Prepared", "Row", "Summary", "count_rows",
           "manifest_kind", "pdf_inside", "prepare", "preview", "read_manifest"]
