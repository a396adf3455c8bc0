"""The old home of the settings, kept for the session's other modules: they live in :mod:`.settings`
(one frozen Settings; nothing written to os.environ) and re-exported from here.

:class:`~peru_compras.workspace.Workspace` (moved to workspace.py, still importable from here) turns
settings into the objects commands need. The private key is never printed, logged or put in an exception
message.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .settings import (
    CONFIG_FILE,
    DEFAULT_BASE_URL,
    HOME,
    LACNET_MODELS,
    Settings,
    load_private_key,
    load_relayer_key,
    load_settings,
)
from .urls import MAX_VERIFY_URL

#: re-exported: the old import path keeps working
__all__ = ["CONFIG_FILE", "DEFAULT_BASE_URL", "HOME", "LACNET_MODELS", "MAX_VERIFY_URL", "Settings", "Workspace",
           "load_private_key", "load_relayer_key", "load_settings"]


if TYPE_CHECKING:
    from .workspace import Workspace as Workspace


def __getattr__(name: str) -> Any:
    """``Workspace`` moved to :mod:`.workspace`; still importable from here (loaded on use: no cycle)."""
    if name == "Workspace":
        from .workspace import Workspace

        return Workspace
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
