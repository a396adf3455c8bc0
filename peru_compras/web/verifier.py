"""The offline verifier: ``/verificar``, an installable web app that reads a signed QR with the camera (or a
photo, or pasted text), checks its EIP-712 signature and signer in the browser against a trust pack it
keeps, and works without signal after one visit (its service worker keeps the app).

Routes:

- ``GET /verificar``: the app (``static/verificar/index.html``); ``/verificar/`` redirects there
- ``GET /verificar/{file}``: its scripts, stylesheet, manifest, icons, service worker (``sw.js``, which may
  control ``/verificar``: ``Service-Worker-Allowed``) and, when ``scripts/bootstrap`` copied them from
  node_modules, ``vendor/`` (jsQR, @noble/secp256k1, @noble/hashes' keccak, each with its licence)
- ``GET /trust-pack.json``: the trust pack (:mod:`peru_compras.trust`) as of the latest block, built in a
  worker thread at most once per :data:`PACK_INTERVAL` seconds and only when the chain moved

The app's answers carry their own Content-Security-Policy (scripts and styles from this origin, one Trusted
Types policy for the two script URLs it loads) and ``Permissions-Policy: camera=(self)``; the page's Guard
keeps a header an answer set and adds the others.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import json
import time
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from ..errors import NodeUnavailable, PeruComprasError, RpcError
from .api import problem
from .assets import PACKAGE

if TYPE_CHECKING:
    from .page import Page

#: the app's files and their media types (anything else under /verificar/ is a 404)
APP_FILES = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "payload.js": "text/javascript; charset=utf-8",
    "verdict.js": "text/javascript; charset=utf-8",
    "strings.js": "text/javascript; charset=utf-8",
    "crypto.js": "text/javascript; charset=utf-8",
    "check.js": "text/javascript; charset=utf-8",
    "sw.js": "text/javascript; charset=utf-8",
    "app.css": "text/css; charset=utf-8",
    "manifest.webmanifest": "application/manifest+json",
    "icon.svg": "image/svg+xml",
    "icon-192.png": "image/png",
    "icon-512.png": "image/png",
}
#: what scripts/bootstrap copies from node_modules (optional: the app says what it cannot do without them)
VENDOR_FILES = {
    "vendor/jsqr/jsQR.js": "text/javascript; charset=utf-8",
    "vendor/jsqr/LICENSE": "text/plain; charset=utf-8",
    "vendor/noble-secp256k1/index.js": "text/javascript; charset=utf-8",
    "vendor/noble-secp256k1/LICENSE": "text/plain; charset=utf-8",
    "vendor/noble-hashes/sha3.js": "text/javascript; charset=utf-8",
    "vendor/noble-hashes/utils.js": "text/javascript; charset=utf-8",
    "vendor/noble-hashes/_u64.js": "text/javascript; charset=utf-8",
    "vendor/noble-hashes/LICENSE": "text/plain; charset=utf-8",
}
APP_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
           "media-src 'self' blob:; connect-src 'self'; worker-src 'self'; manifest-src 'self'; "
           "form-action 'none'; base-uri 'none'; frame-ancestors 'none'; "
           "require-trusted-types-for 'script'; trusted-types verificar")
#: the camera for this origin only (the rest of the page keeps camera=())
APP_PERMISSIONS = "camera=(self), microphone=(), geolocation=(), payment=(), usb=()"
#: a script or file is no document: the short policy saves ~500 header bytes an answer (the service worker's
#: own fetches need connect-src)
FILE_CSP = "default-src 'none'"
WORKER_CSP = "default-src 'none'; connect-src 'self'"
#: the app's files may be reused for a few minutes without asking (the service worker's precache then costs
#: no second request); the worker re-reads each file from the network whenever it serves it online
FILE_CACHE = "public, max-age=300"
#: seconds between two builds of the trust pack (each reads the registry's role and status logs)
PACK_INTERVAL = 15.0
#: seconds a failed build (node down, pack too large) is answered as such before the node is asked again
RETRY_AFTER = 5.0
#: the browser refuses a bigger pack (verdict.js MAX_PACK_CHARS); the server does not send one
MAX_PACK_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class File:
    body: bytes
    gzipped: bytes
    media_type: str
    etag: str


def _file(body: bytes, media_type: str) -> File:
    return File(body, gzip.compress(body, 9, mtime=0), media_type, '"' + hashlib.sha256(body).hexdigest()[:20] + '"')


def app_files() -> dict[str, File]:
    """The app's files by name under /verificar/ (vendor files only when present); sw.js carries the version
    of all the others, so that any change makes browsers install the new app."""
    root = resources.files(PACKAGE).joinpath("static/verificar")
    found: dict[str, tuple[bytes, str]] = {}
    for name, media_type in {**APP_FILES, **VENDOR_FILES}.items():
        path = root.joinpath(name)
        if path.is_file():
            found[name] = (path.read_bytes(), media_type)
    version = hashlib.sha256()
    for name in sorted(found):
        if name != "sw.js":
            version.update(name.encode() + b"\0" + found[name][0])
    worker, media_type = found["sw.js"]
    found["sw.js"] = (worker.replace(b"__VERSION__", version.hexdigest()[:16].encode()), media_type)
    return {name: _file(body, media_type) for name, (body, media_type) in found.items()}


def _serve(item: File, request: Request, *, csp: str = FILE_CSP, cache: str = FILE_CACHE, **extra: str) -> Response:
    compressed = "gzip" in request.headers.get("accept-encoding", "")
    etag = item.etag[:-1] + '-gz"' if compressed else item.etag
    headers = {"Cache-Control": cache, "ETag": etag, "Vary": "Accept-Encoding", "Content-Security-Policy": csp,
               **{name.replace("_", "-"): value for name, value in extra.items()}}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    if compressed:
        headers["Content-Encoding"] = "gzip"
    return Response(item.gzipped if compressed else item.body, media_type=item.media_type, headers=headers)


class PackCache:
    """The latest trust pack as JSON (plain and gzipped), rebuilt only when the chain moved, at most once per
    :data:`PACK_INTERVAL` seconds, in a worker thread (concurrent requests share one build)."""

    def __init__(self, page: Page, clock: Any = time.monotonic) -> None:
        self.page = page
        self.clock = clock
        self.block: int | None = None
        self.file: File | None = None
        self.checked_at = -PACK_INTERVAL
        self.failure: Exception | None = None
        self.failed_at = 0.0
        self.lock = asyncio.Lock()

    def hosts(self) -> tuple[str, ...]:
        netloc = urlsplit(self.page.settings.base_url).netloc.lower()
        return (netloc,) if netloc else ()

    async def get(self) -> File:
        """The pack; while the chain cannot be read, the last one built (it states its own block and time, and
        the app shows its age), else the error."""
        async with self.lock:
            if self.file is not None and self.clock() - self.checked_at < PACK_INTERVAL:
                return self.file
            if self.failure is None or self.clock() - self.failed_at >= RETRY_AFTER:
                try:
                    return await self._build()
                except Exception as exc:
                    self.failure, self.failed_at = exc, self.clock()
            if self.file is not None and not isinstance(self.failure, PackTooLarge):
                return self.file
            assert self.failure is not None
            raise self.failure  # a node that is down is not asked again on every request

    async def _build(self) -> File:
        chain = self.page.chain
        block = await chain.sync(force=True)
        if self.file is None or block != self.block:
            from ..trust import build_trust_pack

            registry = chain.registry
            pack = await chain.run(("trust-pack", block),
                                   lambda: build_trust_pack(registry, hosts=self.hosts(), block=block))
            body = json.dumps(pack, ensure_ascii=False, separators=(",", ":")).encode()
            if len(body) > MAX_PACK_BYTES:
                raise PackTooLarge(len(body))
            self.file, self.block = _file(body, "application/json"), block
        self.checked_at = self.clock()
        self.failure = None
        return self.file


class PackTooLarge(Exception):
    pass


def routes(page: Page) -> list[BaseRoute]:
    """The verifier's routes for the page (web/app.py's ROUTE_SOURCES)."""
    files = app_files()
    packs = PackCache(page)

    async def app(request: Request) -> Response:
        return _serve(files["index.html"], request, csp=APP_CSP, cache="no-cache", Permissions_Policy=APP_PERMISSIONS)

    async def slash(request: Request) -> Response:
        return RedirectResponse("/verificar", status_code=308)

    async def app_file(request: Request) -> Response:
        name = request.path_params["name"]
        item = files.get(name) if name != "index.html" else None
        if item is None:
            return Response("not found", status_code=404, media_type="text/plain; charset=utf-8")
        if name == "sw.js":
            return _serve(item, request, csp=WORKER_CSP, cache="no-cache", Service_Worker_Allowed="/verificar")
        return _serve(item, request)

    async def trust_pack(request: Request) -> Response:
        try:
            item = await packs.get()
        except ImportError:
            return problem(503, "unavailable", "this server cannot build trust packs")
        except PackTooLarge as exc:
            return problem(503, "too_large", f"the trust pack would have {exc.args[0]} bytes, over {MAX_PACK_BYTES}")
        except (NodeUnavailable, RpcError, PeruComprasError, OSError):
            return problem(503, "unavailable", "the chain cannot be read right now")
        return _serve(item, request, cache="no-cache", Access_Control_Allow_Origin="*")

    get = ["GET"]
    return [
        Route("/verificar", app, methods=get),
        Route("/verificar/", slash, methods=get),
        Route("/verificar/{name:path}", app_file, methods=get),
        Route("/trust-pack.json", trust_pack, methods=get),
    ]


__all__ = ["APP_CSP", "APP_PERMISSIONS", "PackCache", "app_files", "routes"]
