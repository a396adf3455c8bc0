"""The page's own files, read once from the package: the Jinja2 templates (autoescaping everything) and the
static files, each with a gzipped copy and a short content hash for cache-busting ``?v=`` URLs."""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from importlib import resources

from jinja2 import Environment, FunctionLoader, select_autoescape

PACKAGE = "peru_compras.web"
#: the files under ``/static/`` and their media types
STATIC_FILES = {"app.js": "text/javascript; charset=utf-8", "favicon.svg": "image/svg+xml",
                "token.svg": "image/svg+xml", "app.css": "text/css; charset=utf-8"}


def asset(name: str) -> bytes:
    """A file of the package, by its path under ``peru_compras/web/``."""
    return resources.files(PACKAGE).joinpath(name).read_bytes()


@dataclass(frozen=True, slots=True)
class Static:
    body: bytes
    gzipped: bytes
    media_type: str
    version: str


def static_files() -> dict[str, Static]:
    out = {}
    for name, media_type in STATIC_FILES.items():
        body = asset(f"static/{name}")
        out[name] = Static(body, gzip.compress(body, 9, mtime=0), media_type, hashlib.sha256(body).hexdigest()[:10])
    return out


def templates() -> Environment:
    def load(name: str) -> str:
        return asset(f"templates/{name}").decode()

    return Environment(loader=FunctionLoader(load), autoescape=select_autoescape(default=True,
                       default_for_string=True), trim_blocks=False, lstrip_blocks=False, auto_reload=False)
