"""One outbound HTTP policy for every platform call and connect flow: never turned inward.

A manager types an instance or PDS address; the worker later sends tokens to whatever the
account row names. Neither may become a way to reach ghostpost's own network (a metadata
service, a database admin page, an internal API). So every request, every hop included:

- The host is parsed the way a resolver would read it, so every spelling of an address is seen
  as that address (`127.1`, `2130706433`, `0x7f.1`, `[::ffff:127.0.0.1]` are all 127.0.0.1),
  and names are resolved with the injected resolver.
- If *any* address is loopback, private, link-local, multicast, unspecified, reserved, shared
  (100.64/10) or otherwise not globally routable (also when wrapped in IPv6: v4-mapped, NAT64,
  6to4, Teredo), the request is refused, unless the environment is `test` (the suite's fake
  platforms listen on loopback) or `outbound_allow_hosts` names the host or the address.
- The connection goes to the address that was checked (a transport adapter pins it; Host and
  TLS SNI/certificate checks still use the name), so DNS cannot change its answer in between.
- Plain http:// only in `test` or for an allowlisted host. No redirect is followed.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

from ghostpost.adapters.base import PermanentError, RetryableError

if TYPE_CHECKING:
    from ghostpost.settings import Settings

__all__ = [
    "Destination",
    "OutboundPolicy",
    "OutboundRefused",
    "Resolver",
    "internal_reason",
    "parse_allowlist",
    "parse_host",
    "system_resolver",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
#: (host name, port) -> the addresses it resolves to, as text; raises OSError when it cannot.
Resolver = Callable[[str, int], Sequence[str]]

_NAME = re.compile(
    r"^(?=.{1,253}$)([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)*$"
)
# What inet_aton reads as an IPv4 address: 1 to 4 parts, each decimal, octal (0...) or hex (0x..).
_LEGACY_IPV4 = re.compile(r"^(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+)){0,3}\.?$")
_SHARED = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
DEFAULT_PORTS = {"http": 80, "https": 443}
HTTPS_ONLY = "Only https:// servers can be connected."


class OutboundRefused(PermanentError):
    """The outbound policy refuses this destination; the message says why, for a person."""


def system_resolver(host: str, port: int) -> list[str]:
    """Resolve with the operating system (getaddrinfo), every address family."""
    infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def parse_host(text: str) -> str | IPAddress:
    """Return an IP address for any spelling of one, else the lower-case ASCII host name.

    Raises OutboundRefused for what is neither (a resolver would guess; we do not).
    """
    host = text.strip().lower()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if ":" in host:
        raise OutboundRefused(f"{text!r} is not a valid IPv6 address.")
    if _LEGACY_IPV4.match(host):
        # The forms getaddrinfo (inet_aton) accepts: 127.1, 2130706433, 0x7f.1, 0177.0.0.1.
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host.rstrip(".")))
        except OSError:
            raise OutboundRefused(f"{text!r} is not a valid address.") from None
    host = host.rstrip(".")
    try:
        host = host.encode("idna").decode("ascii")
    except UnicodeError:
        raise OutboundRefused(f"{text!r} is not a valid server name.") from None
    if not _NAME.match(host):
        raise OutboundRefused(f"{text!r} is not a valid server name.")
    return host


def internal_reason(address: IPAddress) -> str | None:
    """Say what kind of non-public address this is, or None for a globally routable one."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id:
            return "link-local"
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            return internal_reason(embedded)
    checks = (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("reserved", address.is_reserved),
        ("shared carrier-grade NAT", address in _SHARED),
        ("private", address.is_private),
        ("site-local", isinstance(address, ipaddress.IPv6Address) and address.is_site_local),
        ("not globally routable", not address.is_global),
    )
    return next((name for name, hit in checks if hit), None)


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (v4-mapped, NAT64, 6to4, Teredo), if any."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if any(address in network for network in _NAT64):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    return None


def parse_allowlist(text: str) -> tuple[frozenset[str], tuple[IPNetwork, ...]]:
    """Split `outbound_allow_hosts` into host names and IP networks; ValueError names a bad one."""
    names: set[str] = set()
    networks: list[IPNetwork] = []
    for entry in filter(None, (part.strip() for part in text.split(","))):
        try:
            networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            continue
        except ValueError:
            pass
        try:
            parsed = parse_host(entry)
        except OutboundRefused:
            raise ValueError(
                f"{entry!r} is neither a host name nor an IP address or network"
            ) from None
        if isinstance(parsed, str):
            names.add(parsed)
        else:
            networks.append(ipaddress.ip_network(parsed))
    return frozenset(names), tuple(networks)


@dataclass(frozen=True)
class Destination:
    """Where one request may go: the URL's host and port, and the checked address to dial."""

    scheme: str
    #: The host as the URL names it: a lower-case name, or an IP address's canonical text.
    host: str
    port: int
    address: str
    #: The host came as an IP address (then there is no SNI name to send).
    literal: bool


@dataclass(frozen=True)
class OutboundPolicy:
    """Which destinations ghostpost's outbound requests may reach (see the module docstring)."""

    #: Internal addresses and plain http are fine (environment `test`: loopback fakes).
    allow_internal: bool = False
    #: Host names an operator trusts whatever they resolve to (plain http allowed).
    allow_names: frozenset[str] = frozenset()
    #: Addresses an operator trusts (plain http allowed).
    allow_networks: tuple[IPNetwork, ...] = ()
    resolver: Resolver = field(default=system_resolver, compare=False)

    @classmethod
    def from_settings(cls, settings: Settings, resolver: Resolver | None = None) -> OutboundPolicy:
        """Build the policy: `environment`, `outbound_test_exemption`, `outbound_allow_hosts`."""
        names, networks = parse_allowlist(settings.outbound_allow_hosts)
        return cls(
            allow_internal=settings.environment == "test" and settings.outbound_test_exemption,
            allow_names=names,
            allow_networks=networks,
            resolver=resolver or system_resolver,
        )

    def _allowed_address(self, address: IPAddress) -> bool:
        return any(address in network for network in self.allow_networks)

    def check(self, url: str, *, resolve: bool = True) -> Destination:
        """Resolve and check the URL's host; return where to connect or raise OutboundRefused.

        RetryableError when the name does not resolve (DNS may be down for a moment). With
        `resolve=False` (form validation) a name is not looked up: what it resolves to is
        checked on every request anyway, and the returned address is then empty.
        """
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            raise OutboundRefused("The port must be a number from 1 to 65535.") from None
        scheme = parts.scheme.lower()
        if scheme not in DEFAULT_PORTS:
            raise OutboundRefused(HTTPS_ONLY)
        if not parts.hostname:
            raise OutboundRefused(f"{url!r} names no server.")
        if port == 0:
            raise OutboundRefused("The port must be a number from 1 to 65535.")
        port = port or DEFAULT_PORTS[scheme]
        host = parse_host(parts.hostname)
        trusted_name = isinstance(host, str) and host in self.allow_names
        if isinstance(host, str) and not resolve:
            if scheme == "http" and not (self.allow_internal or trusted_name):
                raise OutboundRefused(HTTPS_ONLY)
            return Destination(scheme, host, port, address="", literal=False)
        if isinstance(host, str):
            try:
                answers = list(self.resolver(host, port))
            except (OSError, UnicodeError):
                raise RetryableError(f"could not resolve {host}") from None
            if not answers:
                raise RetryableError(f"could not resolve {host}")
            try:
                addresses = [ipaddress.ip_address(answer) for answer in answers]
            except ValueError:
                raise OutboundRefused(f"{host} resolves to something not an address.") from None
        else:
            addresses = [host]
        trusted = self.allow_internal or trusted_name
        if not trusted:
            for address in addresses:
                reason = internal_reason(address)
                if reason is not None and not self._allowed_address(address):
                    kind = ("an " if reason[0] in "aeiou" else "a ") + reason
                    what = (
                        f"{host} resolves to {address}, {kind} address"
                        if isinstance(host, str)
                        else f"{address} is {kind} address"
                    )
                    raise OutboundRefused(
                        f"{what}; ghostpost connects only to public servers "
                        "(an operator may allow one in outbound_allow_hosts)."
                    )
        if scheme == "http" and not (
            trusted or all(self._allowed_address(address) for address in addresses)
        ):
            raise OutboundRefused(HTTPS_ONLY)
        return Destination(
            scheme=scheme,
            host=str(host),
            port=port,
            address=str(addresses[0]),
            literal=not isinstance(host, str),
        )

    def adapter(self) -> PinnedAdapter:
        """A requests transport adapter that checks every request and dials the checked address."""
        return PinnedAdapter(self)

    def install(self, session: requests.Session) -> requests.Session:
        """Make `session` obey the policy: pinned adapter, no proxies from the environment, and
        no redirects followed (a 3xx comes back to the caller as it is)."""
        adapter = self.adapter()
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        # A proxy from HTTP(S)_PROXY would dial the name itself, unchecked.
        session.trust_env = False
        session.resolve_redirects = _no_redirects  # type: ignore[method-assign,assignment]
        return session


def _no_redirects(*_args: Any, **_kwargs: Any) -> Iterator[requests.Response]:
    # Session.send follows what this yields; yielding nothing hands the 3xx back as it is.
    return iter(())


_DESTINATION = "_ghostpost_destination"


class PinnedAdapter(HTTPAdapter):
    """Checks each request against the policy and connects to the address that was checked.

    The pool is keyed by that address; the Host header, the TLS SNI name and the certificate
    check all keep the URL's host name.
    """

    def __init__(self, policy: OutboundPolicy) -> None:
        super().__init__()
        self.policy = policy

    def send(
        self, request: requests.PreparedRequest, *args: Any, **kwargs: Any
    ) -> requests.Response:
        """Check the destination, pin it, and send."""
        destination = self.policy.check(str(request.url))
        setattr(request, _DESTINATION, destination)
        if "Host" not in request.headers:
            request.headers["Host"] = urlsplit(str(request.url)).netloc.rpartition("@")[2]
        kwargs["proxies"] = {}
        return super().send(request, *args, **kwargs)

    def build_connection_pool_key_attributes(
        self, request: requests.PreparedRequest, verify: Any, cert: Any = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Point the pool at the checked address; keep SNI and hostname checks on the name."""
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(
            request, verify, cert
        )
        destination: Destination = getattr(request, _DESTINATION)
        host_params["host"] = destination.address
        if destination.scheme == "https":
            if not destination.literal:
                pool_kwargs["server_hostname"] = destination.host
            pool_kwargs["assert_hostname"] = destination.host
        return host_params, pool_kwargs
