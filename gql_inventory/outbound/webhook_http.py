"""The webhook sender's HTTP client: aiohttp's client (a keep-alive pool per host), one POST
at a time per call, no redirects followed, no proxies from the environment, no cookies, only
the first bytes of the answer read (ADR 0019, "Throughput": httpx cost about half the
worker's CPU per message; aiohttp's client does the same job for a fraction).

A connection goes back to aiohttp's pool only when its answer was read whole; an answer cut
at `read_at_most` closes its connection.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
import ssl
from dataclasses import dataclass

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from gql_inventory.outbound.urls import METADATA_ADDRESSES, not_public

_USER_AGENT = "gql-inventory-webhooks"


class HttpError(Exception):
    """The request got no usable answer: connecting, TLS, writing, or an answer that is
    not HTTP/1.x. The message says which."""


@dataclass(frozen=True, slots=True)
class Answer:
    """An answer: its `status` code and the first bytes of its `body` (at most the
    caller's `read_at_most`)."""

    status: int
    body: bytes


def _tls_context() -> ssl.SSLContext:
    """The system's CAs, or certifi's bundle when installed (as httpx did)."""
    try:
        import certifi

        return ssl.create_default_context(cafile=certifi.where())
    except ImportError:  # pragma: no cover - httpx brings certifi
        return ssl.create_default_context()


class CheckedResolver(AbstractResolver):
    """aiohttp's resolver, refusing the addresses `urls.check_url` refuses: the connection
    goes to an address judged at connect time, so a name that resolved to a public address
    for the check and to a private one a moment later (DNS rebinding) is never reached.
    Cloud metadata addresses are always refused; with `allow_private` the rest pass."""

    def __init__(self, *, allow_private: bool) -> None:
        self._inner = aiohttp.ThreadedResolver()
        self._allow_private = allow_private

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """`host`'s addresses, or `OSError` when any of them may not be called."""
        found = await self._inner.resolve(host, port, family)
        for result in found:
            address = ipaddress.ip_address(result["host"])
            why = "a cloud metadata" if address in METADATA_ADDRESSES else None
            if why is None and not self._allow_private:
                why = not_public(address)
                why = None if why is None else f"a {why}"
            if why is not None:
                message = f"{host!r} now resolves to {address}, {why} address"
                raise OSError(errno.EACCES, message)
        return found

    async def close(self) -> None:
        """Close the inner resolver."""
        await self._inner.close()


class WebhookClient:
    """POSTs webhooks through one aiohttp session; keeps at most `idle_per_origin`
    connections per host. TLS is verified; names are resolved through `CheckedResolver`
    (private addresses only with `allow_private`). Close it with `aclose`; made inside a
    running event loop."""

    def __init__(self, *, idle_per_origin: int, allow_private: bool) -> None:
        self._idle_per_origin = idle_per_origin
        self._allow_private = allow_private
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=0,
                limit_per_host=self._idle_per_origin,
                ssl=_tls_context(),
                resolver=CheckedResolver(allow_private=self._allow_private),
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                cookie_jar=aiohttp.DummyCookieJar(),
                trust_env=False,
                auto_decompress=False,
                timeout=aiohttp.ClientTimeout(total=None),
                headers={"user-agent": _USER_AGENT},
            )
        return self._session

    async def post(
        self, url: str, body: bytes, headers: dict[str, str], *, read_at_most: int
    ) -> Answer:
        """POST `body` to `url` (http or https) with `headers` (names and values without
        CR or LF); the answer with at most `read_at_most` bytes of its body. Raises
        `HttpError` (see the class), `ValueError` for a header with CR or LF. No timeout
        of its own: the caller bounds it."""
        for name, value in headers.items():
            if any(c in name or c in value for c in "\r\n\0"):
                raise ValueError(f"the header {name!r} holds a line break")
        try:
            async with self._client().post(
                url, data=body, headers=headers, allow_redirects=False
            ) as response:
                read = bytearray()
                while len(read) < read_at_most:
                    chunk = await response.content.read(read_at_most - len(read))
                    if not chunk:
                        break
                    read += chunk
                if not response.content.at_eof():
                    response.close()  # the rest is never read: this connection cannot be reused
                return Answer(response.status, bytes(read))
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            raise HttpError(_why(exc)) from None

    async def aclose(self) -> None:
        """Close every pooled connection."""
        if self._session is not None:
            await self._session.close()
            self._session = None


def _why(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:500] if str(exc) else type(exc).__name__


__all__ = ["Answer", "HttpError", "WebhookClient"]
