"""Which addresses outbound fetches may contact, enforced where the TCP connection is made.

Feed URLs come from users and from the feeds themselves (redirects, links), so a fetch could
be pointed at the worker's own network: its metadata service, Redis, an admin page. Checking
the URL's host before the request is not enough: a public name can resolve to a private
address (or to a public one at check time and a private one at connect time, DNS rebinding),
and a redirect can name any host. The guard therefore sits in the network backend: it
resolves the host itself, checks every resolved address, and connects to an address it has
checked, never re-resolving.
"""

from __future__ import annotations

import concurrent.futures
import ipaddress
import socket
import typing

import httpcore

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_V4_NET = ipaddress.IPv4Network
_V6_NET = ipaddress.IPv6Network

_CGNAT = _V4_NET("100.64.0.0/10")
_RFC1918 = (_V4_NET("10.0.0.0/8"), _V4_NET("172.16.0.0/12"), _V4_NET("192.168.0.0/16"))
_BROADCAST = ipaddress.IPv4Address("255.255.255.255")

# IPv6 forms that carry an IPv4 address the traffic may end up at. ``is_global`` alone
# calls 64:ff9b::7f00:1 and 2002:7f00:1::1 global, although they lead to 127.0.0.1.
_NAT64 = (_V6_NET("64:ff9b::/96"), _V6_NET("64:ff9b:1::/48"))
_V4_COMPATIBLE = _V6_NET("::/96")  # deprecated ::a.b.c.d
_SITE_LOCAL = _V6_NET("fec0::/10")  # deprecated, but still not ours to reach
_UNIQUE_LOCAL = _V6_NET("fc00::/7")


def _ipv4_reason(ip: ipaddress.IPv4Address) -> str | None:
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if ip.is_multicast:
        return "multicast"
    if ip in _CGNAT:
        return "cgnat"
    if ip == _BROADCAST:
        return "broadcast"
    if any(ip in net for net in _RFC1918):
        return "private"
    # 0/8, 240/4, documentation, benchmarking, IETF assignments…: nothing public lives there.
    if ip.is_reserved or not ip.is_global:
        return "reserved"
    return None


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> list[tuple[str, ipaddress.IPv4Address]]:
    """The IPv4 addresses an IPv6 address stands for, each with the form's name."""
    if ip.ipv4_mapped is not None:
        return [("ipv4-mapped", ip.ipv4_mapped)]
    if any(ip in net for net in _NAT64):
        return [("nat64", ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))]
    if ip.sixtofour is not None:
        return [("6to4", ip.sixtofour)]
    if ip.teredo is not None:
        server, client = ip.teredo
        return [("teredo", client), ("teredo server", server)]
    if ip in _V4_COMPATIBLE:
        return [("ipv4-compatible", ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))]
    return []


def _ipv6_reason(ip: ipaddress.IPv6Address) -> str | None:
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_loopback:
        return "loopback"
    embedded = _embedded_ipv4(ip)
    for form, ipv4 in embedded:
        reason = _ipv4_reason(ipv4)
        if reason is not None:
            return f"{form} {reason}"
    if embedded:
        # A public IPv4 behind a mapping is as reachable as the IPv4 itself, except in the
        # deprecated compatible form, which nothing routes.
        return "ipv4-compatible" if ip in _V4_COMPATIBLE else None
    if ip.is_link_local:
        return "link-local"
    if ip in _SITE_LOCAL:
        return "site-local"
    if ip in _UNIQUE_LOCAL:
        return "private"
    if ip.is_multicast:
        return "multicast"
    if not ip.is_global:
        return "reserved"
    return None


def blocked_reason(ip: IPAddress) -> str | None:
    """Why ``ip`` may not be contacted by a fetch ("loopback", "private", "cgnat",
    "ipv4-mapped loopback", …), or None when it is a public address."""
    if isinstance(ip, ipaddress.IPv6Address):
        return _ipv6_reason(ip)
    return _ipv4_reason(ip)


class BlockedAddress(OSError):
    """A connection refused by the guard: every address the host resolved to is blocked."""

    def __init__(self, host: str, address: str, reason: str) -> None:
        super().__init__(f"refusing to connect to {host} ({address}): {reason} address")
        self.host = host
        self.address = address
        self.reason = reason

    def __reduce__(self) -> tuple[typing.Any, ...]:
        return (type(self), (self.host, self.address, self.reason))


# Lookups that outlive their timeout keep a thread until the resolver answers; a handful
# of threads bounds how many can hang at once (further lookups queue, and time out).
_RESOLVER = concurrent.futures.ThreadPoolExecutor(max_workers=16, thread_name_prefix="dns")


class GuardedBackend(httpcore.SyncBackend):
    """httpcore's synchronous network backend with the address check in ``connect_tcp``.

    httpcore calls ``connect_tcp`` with the origin's host for every new connection (each
    redirect hop included) and afterwards starts TLS with ``server_hostname`` taken from the
    origin, not from the address we connected to, so certificates and SNI still name the host.
    """

    def __init__(self, allow_private_networks: bool) -> None:
        super().__init__()
        self.allow_private_networks = allow_private_networks

    def check(self, ip: IPAddress) -> str | None:
        """Why this backend refuses ``ip``, or None. One place for subclasses to narrow."""
        return None if self.allow_private_networks else blocked_reason(ip)

    def lookup(self, host: str, port: int) -> list[typing.Any]:
        """The system resolver (a seam for tests)."""
        return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)

    def resolve(self, host: str, port: int, timeout: float | None = None) -> list[str]:
        """The addresses ``host`` resolves to, in the resolver's order, without repeats.
        getaddrinfo cannot be interrupted, so it runs on a resolver thread and is given up
        after ``timeout`` (the thread finishes on its own; its answer is dropped)."""
        lookup = _RESOLVER.submit(self.lookup, host, port)
        try:
            infos = lookup.result(timeout=timeout)
        except concurrent.futures.TimeoutError as exc:
            raise httpcore.ConnectTimeout(f"resolving {host!r} took over {timeout}s") from exc
        except (socket.gaierror, UnicodeError) as exc:
            # httpx turns httpcore.ConnectError into httpx.ConnectError; the gaierror stays
            # reachable as the cause, which is how callers tell DNS failures apart.
            raise httpcore.ConnectError(f"cannot resolve {host!r}: {exc}") from exc
        addresses: list[str] = []
        for _family, _type, _proto, _canon, sockaddr in infos:
            address = str(sockaddr[0])
            if address not in addresses:
                addresses.append(address)
        return addresses

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        allowed: list[str] = []
        refused: list[tuple[str, str]] = []
        for address in self.resolve(host, port, timeout):
            reason = self.check(ipaddress.ip_address(address))
            if reason is None:
                allowed.append(address)
            else:
                refused.append((address, reason))
        if not allowed:
            address, reason = refused[0] if refused else ("no address", "unresolved")
            raise BlockedAddress(host, address, reason)
        # Connect to a checked address, not to the name: resolving again could give another.
        # A refused or unreachable address moves on to the next (dual-stack hosts); a timeout
        # does not, so one connect timeout stays the bound.
        last_error: httpcore.ConnectError | None = None
        for address in allowed:
            try:
                return super().connect_tcp(
                    address,
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except httpcore.ConnectError as exc:
                last_error = exc
        assert last_error is not None
        raise last_error
