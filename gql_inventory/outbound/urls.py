"""Which webhook URLs this service will call (SSRF guard), checked at creation and again
before every send (a name may resolve elsewhere later: DNS rebinding)."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

from gql_inventory.domain.errors import FieldPath, UrlNotAllowed

MAX_URL_LENGTH = 2048
#: Cloud metadata services (AWS/GCP/Azure/OpenStack 169.254.169.254, AWS IPv6, Alibaba,
#: Azure's wire server): never called, whatever `allow_private` says.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200", "168.63.129.16")
)

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def not_public(address: Address) -> str | None:
    """Why `address` is not a public unicast address, or None when it is."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    checks = (
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("unspecified", address.is_unspecified),
        ("multicast", address.is_multicast),
        ("shared (carrier-grade NAT)", address in ipaddress.ip_network("100.64.0.0/10")),
        ("private", address.is_private),
        ("reserved", address.is_reserved),
    )
    for name, hit in checks:
        if hit:
            return name
    return None


async def resolve(host: str, port: int) -> list[Address]:
    """Every address `host` resolves to now (a literal address: itself). Raises `OSError`
    (socket.gaierror) when it does not resolve."""
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    return [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]


async def check_url(url: str, *, allow_private: bool, field: FieldPath | None = None) -> None:
    """Refuse a webhook URL this service must not call; return None when it may.

    Always: an absolute http(s) URL with a host, no user info, no fragment, at most 2,048
    characters, never a cloud metadata address. Unless `allow_private` (development, or
    ``WEBHOOK_ALLOW_PRIVATE_URLS=true``): https only, and every address the host resolves
    to now must be public (not loopback, private, link-local, multicast, reserved,
    unspecified or carrier-grade NAT; IPv4-mapped IPv6 judged as IPv4). Raises
    `UrlNotAllowed` with `field`, the message saying why.
    """
    if len(url) > MAX_URL_LENGTH:
        raise UrlNotAllowed(f"the URL is longer than {MAX_URL_LENGTH} characters", field=field)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise UrlNotAllowed("the URL is malformed", field=field) from None
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise UrlNotAllowed("give an absolute https:// URL with a host", field=field)
    if parts.username is not None or parts.password is not None or parts.fragment:
        raise UrlNotAllowed("the URL must carry no user info and no fragment", field=field)
    if parts.scheme != "https" and not allow_private:
        raise UrlNotAllowed("the URL must be https", field=field)
    host = parts.hostname
    try:
        addresses = await resolve(host, port or (443 if parts.scheme == "https" else 80))
    except OSError:
        raise UrlNotAllowed(f"the host {host!r} does not resolve", field=field) from None
    for address in addresses:
        if address in METADATA_ADDRESSES:
            raise UrlNotAllowed(f"{host!r} is a cloud metadata address", field=field)
        why = None if allow_private else not_public(address)
        if why is not None:
            raise UrlNotAllowed(
                f"the host {host!r} resolves to {address}, a {why} address", field=field
            )
