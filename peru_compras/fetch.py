"""Download a registered order's published PDF, carefully: the URL comes from the chain, so it is treated
as untrusted. Both ``verify --fetch`` and the verification page's document check (``web/published.py``,
which runs :func:`check_published` in a worker thread) download through here, under one set of rules.

Rules, for the first URL and for every redirect:

1. ``http`` or ``https`` only, no ``user:password`` in the URL, and the host must be allowed. For
   ``verify --fetch`` (:meth:`FetchPolicy.from_settings`) that is the base URL's host (``--base-url``), or one
   listed in ``PERU_COMPRAS_FETCH_HOSTS`` (comma-separated; ``host`` or ``host:port``) or ``--fetch-host``.
   The page (:meth:`FetchPolicy.for_page`, ``any_host``) checks whatever URL is registered, so any host
   name is allowed there — rule 2 is what keeps it off the server's own network.
2. The host is resolved once and every address it resolves to must be public: not loopback, private,
   link-local, carrier-grade NAT, multicast, reserved or unspecified, nor an IPv6 address a translator maps to such
   an IPv4 address (IPv4-mapped, NAT64, 6to4). For ``verify --fetch`` the one
   exception is the base URL's own origin (host and port), which may be local — on the embedded default it
   is ``127.0.0.1:8000`` — so a redirect to any *other* loopback or private host is refused. The page has
   no exception (``local_base=False``): it reads its own ``/d/`` documents from the store instead. Only
   tests turn the rule off (``allow_private``).
3. The connection goes to the address that was checked (no second lookup a DNS rebinding could change);
   for HTTPS the certificate is still checked against the host name (sent as SNI and ``Host``).
4. At most 3 redirects, ``PERU_COMPRAS_FETCH_MAX_BYTES`` (default 50 MB, the PDF size limit; the page: its
   own ``max_bytes``) read from a stream and abandoned as soon as the cap is passed,
   ``PERU_COMPRAS_FETCH_TIMEOUT`` seconds in all (default 20; the page: its own ``timeout``), no proxy
   from the environment, no compressed transfer.

A refusal by these rules is :class:`FetchRefused` (exit 2: a setting decides it); a server that cannot be
reached, is too slow or answers an HTTP error is :class:`FetchFailed` (exit 3); 404 or 410 is
:class:`DocumentMissing` (exit 1: a negative answer). :func:`check_published` turns these into the outcomes
the verification page uses too: ``original``, ``altered``, ``missing``, ``unreachable``, ``too_large``,
``refused``.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import ssl
import time
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from functools import cache
from typing import TYPE_CHECKING
from urllib.parse import urljoin, urlsplit

from .errors import DocumentMissing as DocumentMissing  # the fetch errors are defined in errors.py;
from .errors import FetchFailed as FetchFailed  # fetch.FetchRefused etc. stay
from .errors import FetchRefused as FetchRefused
from .errors import FetchTooLarge as FetchTooLarge
from .hashing import sha256

if TYPE_CHECKING:
    import httpx

    from .settings import Settings

DEFAULT_TIMEOUT = 20.0
DEFAULT_MAX_BYTES = 50 * 1024 * 1024
MAX_REDIRECTS = 3
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def _origin(url: str) -> tuple[str, int]:
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower().rstrip(".")
        port = parts.port
    except ValueError as exc:
        raise FetchRefused(f"URL {url!r} is not valid: {exc}", hint="fix the URL") from None
    return host, port or (443 if parts.scheme == "https" else 80)


@dataclass(frozen=True, slots=True)
class FetchPolicy:
    """What `fetch_document` may download (see the module docstring).

    `any_host` allows every host name (the address rule still applies); `local_base` lets the base URL's own
    origin resolve to a local address; `allow_private` drops the address rule altogether (tests only).
    """

    base_url: str
    extra_hosts: frozenset[str] = field(default_factory=frozenset)
    max_bytes: int = DEFAULT_MAX_BYTES
    timeout: float = DEFAULT_TIMEOUT
    max_redirects: int = MAX_REDIRECTS
    any_host: bool = False
    local_base: bool = True
    allow_private: bool = False
    user_agent: str = "peru-compras-verify"

    @classmethod
    def from_settings(cls, settings: Settings, hosts: Iterable[str] = (), *, max_bytes: int | None = None,
                      timeout: float | None = None) -> FetchPolicy:
        """``verify --fetch``'s policy: the base URL's host plus `settings.fetch_hosts` and `hosts`
        (``--fetch-host``); limits from the arguments, else the settings."""
        listed = (*settings.fetch_hosts, *hosts)
        extra = frozenset(h.strip().lower().rstrip(".") for h in listed if h.strip())
        return cls(settings.base_url, extra, settings.fetch_max_bytes if max_bytes is None else max_bytes,
                   settings.fetch_timeout if timeout is None else timeout)

    @classmethod
    def from_env(cls, base_url: str, hosts: Iterable[str] = (), *, max_bytes: int | None = None,
                 timeout: float | None = None) -> FetchPolicy:
        """:meth:`from_settings` with the ``PERU_COMPRAS_FETCH_*`` variables alone (no file, nothing else
        from the environment); a bad value is a ConfigurationError naming the variable."""
        from .settings import load_settings

        fetch_only = {name: value for name, value in os.environ.items() if name.startswith("PERU_COMPRAS_FETCH_")}
        settings = replace(load_settings(env=fetch_only, read_file=False), base_url=base_url)
        return cls.from_settings(settings, hosts, max_bytes=max_bytes, timeout=timeout)

    @classmethod
    def for_page(cls, base_url: str, *, max_bytes: int, timeout: float, allow_private: bool = False) -> FetchPolicy:
        """The verification page's policy: any host, public addresses only (its own documents are read from
        the store, so its base URL gets no exception); `allow_private` is for tests."""
        return cls(base_url, max_bytes=max_bytes, timeout=timeout, any_host=True, local_base=False,
                   allow_private=allow_private, user_agent="peru-compras document check")

    @property
    def trusted_origin(self) -> tuple[str, int]:
        return _origin(self.base_url)

    def host_allowed(self, host: str, port: int) -> bool:
        if self.any_host:
            return True
        if (host, port) == self.trusted_origin or host == self.trusted_origin[0]:
            return True
        return host in self.extra_hosts or f"{host}:{port}" in self.extra_hosts

    def describe_allowed(self) -> str:
        return ", ".join(sorted({self.trusted_origin[0], *self.extra_hosts}))


def address_is_public(address: str) -> bool:
    """Whether an IP address is a public unicast address: globally reachable in IANA's special-purpose
    registries as the standard library has them (which rules out loopback, private, link-local,
    carrier-grade NAT, reserved, documentation and unspecified addresses, and an IPv6 zone changes
    nothing), and not multicast, which `is_global` lets through. An IPv6 address that carries an IPv4
    address for a translator (IPv4-mapped, NAT64 64:ff9b::/96, 6to4 2002::/16) is judged by that address:
    the translator would connect to it."""
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address):
        if ip in _NAT64:
            ip = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        else:
            ip = ip.ipv4_mapped or ip.sixtofour or ip
    return ip.is_global and not ip.is_multicast


def _resolve(host: str, port: int) -> list[str]:
    try:
        ipaddress.ip_address(host)
        return [host]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise FetchFailed(f"cannot resolve host {host!r}: {exc}",
                          hint="check the document URL and the network") from None
    addresses = []
    for info in infos:
        address = str(info[4][0])  # an IPv6 zone ("fe80::1%eth0") stays: ipaddress reads it
        if address not in addresses:
            addresses.append(address)
    return addresses


@dataclass(frozen=True, slots=True)
class Fetched:
    """A downloaded document."""

    url: str  # where it was finally found
    data: bytes
    redirects: tuple[str, ...] = ()


def _check(url: str, policy: FetchPolicy, *, hop: int) -> tuple[str, str, int]:
    """(address to connect to, host, port) for `url`, or FetchRefused."""
    what = "the document URL" if hop == 0 else f"redirect {hop} ({url})"
    host, port = _origin(url)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise FetchRefused(f"{what} {url!r} is not http(s)", hint="documents are fetched over HTTP or HTTPS only")
    if parts.username or parts.password:
        raise FetchRefused(f"{what} carries credentials", hint="publish documents at a URL without user:password")
    if not host:
        raise FetchRefused(f"{what} {url!r} has no host", hint="fix the URL")
    if not policy.host_allowed(host, port):
        raise FetchRefused(f"{what} goes to host {host!r}, which is not allowed (allowed: {policy.describe_allowed()})",
                           hint=f"if {host} is yours, add it to PERU_COMPRAS_FETCH_HOSTS or --fetch-host")
    addresses = _resolve(host, port)
    trusted = policy.allow_private or (policy.local_base and (host, port) == policy.trusted_origin)
    if not trusted:
        for address in addresses:
            if not address_is_public(address):
                raise FetchRefused(f"{what}: host {host!r} resolves to {address}, a loopback or private address",
                                   hint="publish documents on a public address" + (
                                       "; only the base URL's own host may be local" if policy.local_base else ""))
    if not addresses:
        raise FetchFailed(f"host {host!r} has no address", hint="check the document URL")
    return addresses[0], host, port


@cache
def _tls_context() -> ssl.SSLContext:
    """httpx's own default (certifi's roots, host names checked; no SSL_CERT_FILE from the environment),
    made once: building it costs about 0.2 s, which every download paid."""
    import httpx

    return httpx.create_ssl_context(trust_env=False)


def fetch_document(url: str, policy: FetchPolicy, *, transport: httpx.BaseTransport | None = None) -> Fetched:
    """Download `url` under `policy` (see the module docstring); `transport` replaces the network in tests
    (it is handed the request for the pinned address)."""
    import httpx

    deadline = time.monotonic() + policy.timeout
    redirects: list[str] = []
    current = url
    with httpx.Client(follow_redirects=False, trust_env=False, transport=transport, verify=_tls_context()) as client:
        for hop in range(policy.max_redirects + 1):
            address, _, port = _check(current, policy, hop=hop)
            left = deadline - time.monotonic()  # the limit is for the whole download, redirects included
            if left <= 0:
                raise FetchFailed(f"{url} took more than {policy.timeout:g} s",
                                  hint="try again later, or raise PERU_COMPRAS_FETCH_TIMEOUT")
            try:
                target = httpx.URL(current)
                pinned = target.copy_with(host=address)
            except (httpx.InvalidURL, ValueError) as exc:
                raise FetchRefused(f"URL {current!r} is not valid: {exc}", hint="fix the URL") from None
            name = target.raw_host.decode("ascii")  # IDNA-encoded, as the certificate and the server know it
            authority = f"[{name}]" if ":" in name else name
            default_port = 443 if target.scheme == "https" else 80
            headers = {"Host": authority if port == default_port else f"{authority}:{port}",
                       "Accept": "application/pdf, */*;q=0.1", "Accept-Encoding": "identity",
                       "User-Agent": policy.user_agent}
            extensions = {"sni_hostname": name} if target.scheme == "https" else {}
            request = client.build_request("GET", pinned, headers=headers, extensions=extensions,
                                           timeout=httpx.Timeout(min(left, 10.0), read=left))
            try:
                response = client.send(request, stream=True)
            except httpx.TimeoutException:
                raise FetchFailed(f"{current} did not answer within {policy.timeout:g} s",
                                  hint="try again later, or raise PERU_COMPRAS_FETCH_TIMEOUT") from None
            except httpx.HTTPError as exc:
                raise FetchFailed(f"cannot download {current}: {exc}", hint="check the server is up") from None
            try:
                if response.is_redirect:
                    location = response.headers.get("location")
                    if not location:
                        raise FetchFailed(f"{current} answered {response.status_code} without a Location",
                                          hint="fix the server")
                    current = urljoin(current, location)
                    redirects.append(current)
                    continue
                if response.status_code in (404, 410):
                    raise DocumentMissing(f"{current} answered HTTP {response.status_code}: the document is gone",
                                          hint="ask its publisher to restore the registered PDF at its URL")
                if response.status_code != 200:
                    raise FetchFailed(f"{current} answered HTTP {response.status_code}",
                                      hint="the document is not published there any more; ask its publisher")
                declared = response.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > policy.max_bytes:
                    raise FetchTooLarge(f"{current} is {int(declared):,} bytes, "
                                        f"over the {policy.max_bytes:,}-byte limit", size=int(declared),
                                        hint="raise PERU_COMPRAS_FETCH_MAX_BYTES if that size is expected")
                data = bytearray()
                try:
                    for chunk in response.iter_bytes():
                        data += chunk
                        if len(data) > policy.max_bytes:
                            raise FetchTooLarge(f"{current} sent more than the {policy.max_bytes:,}-byte limit",
                                                size=len(data),
                                                hint="raise PERU_COMPRAS_FETCH_MAX_BYTES if that size is expected")
                        if time.monotonic() > deadline:
                            raise FetchFailed(f"{current} took more than {policy.timeout:g} s",
                                              hint="try again later, or raise PERU_COMPRAS_FETCH_TIMEOUT")
                except httpx.TimeoutException:
                    raise FetchFailed(f"{current} stopped sending for {policy.timeout:g} s",
                                      hint="try again later") from None
                except httpx.HTTPError as exc:
                    raise FetchFailed(f"downloading {current} failed: {exc}", hint="try again later") from None
                return Fetched(current, bytes(data), tuple(redirects))
            finally:
                response.close()
    raise FetchRefused(f"{url} redirected more than {policy.max_redirects} times",
                       hint="publish the document at a stable URL")


@dataclass(frozen=True, slots=True)
class PublishedCheck:
    """Is the document published at `url` still the registered original?"""

    outcome: str  # original | altered | missing | unreachable | too_large | refused
    url: str
    expected_sha256: bytes
    sha256: bytes | None = None
    size: int | None = None
    final_url: str | None = None
    detail: str | None = None
    exit_code: int = 0

    def to_json(self) -> dict[str, object]:
        return {"outcome": self.outcome, "url": self.url, "final_url": self.final_url,
                "sha256": self.sha256.hex() if self.sha256 else None, "size": self.size,
                "expected_sha256": self.expected_sha256.hex(), "detail": self.detail}

    def human(self) -> str:
        words = {
            "original": "the published PDF is the registered original",
            "altered": "the published PDF is NOT the registered original",
            "missing": "the published PDF is gone",
            "unreachable": "the published PDF could not be downloaded",
            "too_large": "the published PDF is over the size limit",
            "refused": "the published PDF was not downloaded",
        }
        text = f"  published: {words[self.outcome]} ({self.url})"
        return text + (f"\n    {self.detail}" if self.detail and self.outcome != "original" else "")


def check_published(url: str, expected: bytes, policy: FetchPolicy, *,
                    transport: httpx.BaseTransport | None = None) -> PublishedCheck:
    """Download `url` under `policy` and compare its SHA-256 with `expected` (`transport`: for tests)."""
    try:
        fetched = fetch_document(url, policy, transport=transport)
    except DocumentMissing as exc:
        return PublishedCheck("missing", url, expected, detail=str(exc), exit_code=1)
    except FetchTooLarge as exc:
        return PublishedCheck("too_large", url, expected, size=exc.size, detail=str(exc), exit_code=exc.exit_code)
    except FetchRefused as exc:
        return PublishedCheck("refused", url, expected, detail=str(exc), exit_code=exc.exit_code)
    except FetchFailed as exc:
        return PublishedCheck("unreachable", url, expected, detail=str(exc), exit_code=exc.exit_code)
    digest = sha256(fetched.data)
    same = digest == expected
    return PublishedCheck("original" if same else "altered", url, expected, digest, len(fetched.data),
                          fetched.url, None if same else "its SHA-256 differs from the one registered on chain",
                          0 if same else 1)
