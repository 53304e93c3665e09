"""The address policy of outbound fetches, address by address."""

from __future__ import annotations

import ipaddress

import pytest

from pipelines.netguard import BlockedAddress, GuardedBackend, blocked_reason


def teredo(server: str, client: str) -> str:
    """A Teredo address (2001::/32) for ``server`` and ``client``; the client is stored
    with its bits inverted, as RFC 4380 has it."""
    value = (
        (0x2001_0000 << 96)
        | (int(ipaddress.IPv4Address(server)) << 64)
        | (0x8000_63BF << 32)
        | (~int(ipaddress.IPv4Address(client)) & 0xFFFFFFFF)
    )
    return str(ipaddress.IPv6Address(value))


BLOCKED = [
    ("127.0.0.1", "loopback"),
    ("127.255.0.9", "loopback"),
    ("10.0.0.1", "private"),
    ("10.255.255.255", "private"),
    ("172.16.0.1", "private"),
    ("172.31.255.254", "private"),
    ("192.168.1.1", "private"),
    ("169.254.169.254", "link-local"),  # cloud metadata services
    ("100.64.0.1", "cgnat"),
    ("100.127.255.254", "cgnat"),
    ("0.0.0.0", "unspecified"),
    ("0.1.2.3", "reserved"),
    ("224.0.0.1", "multicast"),
    ("239.255.255.250", "multicast"),
    ("255.255.255.255", "broadcast"),
    ("240.0.0.1", "reserved"),
    ("192.0.2.1", "reserved"),  # documentation
    ("198.18.0.1", "reserved"),  # benchmarking
    ("::1", "loopback"),
    ("::", "unspecified"),
    ("fe80::1", "link-local"),
    ("fe80::1%1", "link-local"),
    ("fec0::1", "site-local"),
    ("fc00::1", "private"),
    ("fd12:3456::1", "private"),
    ("ff02::1", "multicast"),
    ("::ffff:127.0.0.1", "ipv4-mapped loopback"),
    ("::ffff:10.0.0.1", "ipv4-mapped private"),
    ("::ffff:169.254.169.254", "ipv4-mapped link-local"),
    ("::ffff:0.0.0.0", "ipv4-mapped unspecified"),
    ("64:ff9b::7f00:1", "nat64 loopback"),
    ("64:ff9b::a00:1", "nat64 private"),
    ("64:ff9b:1::a9fe:a9fe", "nat64 link-local"),
    ("2002:7f00:1::1", "6to4 loopback"),
    ("2002:c0a8:101::1", "6to4 private"),
    (teredo("65.54.227.120", "10.0.0.1"), "teredo private"),
    (teredo("65.54.227.120", "127.0.0.1"), "teredo loopback"),
    (teredo("192.168.0.1", "8.8.8.8"), "teredo server private"),
    ("::7f00:1", "ipv4-compatible loopback"),
    ("::808:808", "ipv4-compatible"),
    ("2001:db8::1", "reserved"),  # documentation
]

PUBLIC = [
    "8.8.8.8",
    "1.1.1.1",
    "93.184.216.34",
    "100.128.0.1",  # just past CGNAT
    "172.32.0.1",  # just past 172.16/12
    "2606:4700::1111",
    "2a00:1450:4001:82b::200e",
    "::ffff:8.8.8.8",
    "64:ff9b::808:808",  # NAT64 to a public address
    "2002:808:808::1",  # 6to4 of a public address
]


@pytest.mark.parametrize(("address", "reason"), BLOCKED)
def test_blocked_addresses_have_a_reason(address: str, reason: str) -> None:
    assert blocked_reason(ipaddress.ip_address(address)) == reason


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_are_allowed(address: str) -> None:
    assert blocked_reason(ipaddress.ip_address(address)) is None


def test_teredo_helper_embeds_the_client() -> None:
    address = ipaddress.IPv6Address(teredo("65.54.227.120", "10.0.0.1"))
    assert address.teredo == (
        ipaddress.IPv4Address("65.54.227.120"),
        ipaddress.IPv4Address("10.0.0.1"),
    )


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "::ffff:127.0.0.1"])
def test_guard_refuses_before_connecting(host: str) -> None:
    # Port 9 (discard) is not listening: had the guard let the connect through, the error
    # would be a refused connection, not BlockedAddress.
    with pytest.raises(BlockedAddress) as caught:
        GuardedBackend(allow_private_networks=False).connect_tcp(host, 9, timeout=2)
    assert caught.value.host == host
    assert "loopback" in caught.value.reason
    assert host in str(caught.value)


def test_allowed_policy_lets_private_addresses_through() -> None:
    backend = GuardedBackend(allow_private_networks=True)
    assert backend.check(ipaddress.ip_address("127.0.0.1")) is None
    strict = GuardedBackend(allow_private_networks=False)
    assert strict.check(ipaddress.ip_address("127.0.0.1")) == "loopback"


def test_blocked_address_is_an_oserror_that_pickles() -> None:
    import pickle

    error = BlockedAddress("evil.example", "10.0.0.1", "private")
    assert isinstance(error, OSError)
    again = pickle.loads(pickle.dumps(error))
    assert (again.host, again.address, again.reason) == ("evil.example", "10.0.0.1", "private")
