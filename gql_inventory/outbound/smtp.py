"""Where e-mail goes: `SMTP_URL` parsed into an SMTP target, and one message sent to it
with aiosmtplib, its result as a `SendOutcome` (docs/email.md, "Outcomes")."""

from __future__ import annotations

from dataclasses import dataclass, field
from email.message import EmailMessage
from urllib.parse import unquote, urlsplit

import aiosmtplib

from gql_inventory.outbound.messages import SendOutcome, kept_body

#: Default ports: 25 for plain SMTP (STARTTLS when offered), 465 for implicit TLS (RFC 8314).
DEFAULT_PORTS = {"smtp": 25, "smtps": 465}


@dataclass(frozen=True, slots=True)
class SmtpTarget:
    """An SMTP server: `tls` True for implicit TLS (``smtps://``), else STARTTLS when the
    server offers it; `username`/`password` url-decoded (None: no AUTH)."""

    host: str
    port: int
    tls: bool
    username: str | None = None
    password: str | None = field(default=None, repr=False)


def parse_smtp_url(url: str) -> SmtpTarget:
    """``smtp://[user[:password]@]host[:port]`` or ``smtps://...`` -> `SmtpTarget`.

    Raises `ValueError` (naming the problem, never the password) for another scheme, a
    missing host, a bad port, or a path, query or fragment (nothing there is understood).
    """
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise ValueError("SMTP_URL is malformed (is the port a number?)") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise ValueError(
            f"SMTP_URL must start smtp:// (STARTTLS when offered) or smtps:// (TLS), "
            f"not {scheme + '://' if scheme else 'no scheme'}"
        )
    if not parts.hostname:
        raise ValueError("SMTP_URL names no host")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError("SMTP_URL takes no path, query or fragment")
    return SmtpTarget(
        host=parts.hostname,
        port=port or DEFAULT_PORTS[scheme],
        tls=scheme == "smtps",
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
    )


def _first_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[0][:200] if lines else ""


async def send_message(
    target: SmtpTarget, message: EmailMessage, *, timeout_seconds: float
) -> SendOutcome:
    """Send `message` (its From and To headers are the envelope) in one SMTP session.

    Never raises for the server's or the network's failures (docs/email.md, "Outcomes"):
    accepted: `delivered`; a 5xx refusal of the recipient or of the message (RFC 5321
    4.2.1: do not repeat the request): `gone` (FAILED now, no retry); anything else
    (4xx, a 5xx to our sender or login, which a configuration fix cures, a timeout, a
    refused connection, TLS trouble): a failure retried on the schedule.
    """
    try:
        errors, reply = await aiosmtplib.send(
            message,
            hostname=target.host,
            port=target.port,
            username=target.username,
            password=target.password,
            use_tls=target.tls,
            start_tls=False if target.tls else None,  # None: STARTTLS when offered
            timeout=timeout_seconds,
        )
    except aiosmtplib.SMTPRecipientsRefused as exc:
        first = exc.recipients[0]
        return _refused(first.code, f"recipient refused: {first.message}")
    except aiosmtplib.SMTPRecipientRefused as exc:
        return _refused(exc.code, f"recipient refused: {exc.message}")
    except aiosmtplib.SMTPDataError as exc:
        return _refused(exc.code, f"message refused: {exc.message}")
    except aiosmtplib.SMTPResponseException as exc:  # sender, login, HELO: our side
        return SendOutcome(
            delivered=False, status_code=exc.code, error=f"{type(exc).__name__}: {exc.message}"
        )
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
        return SendOutcome(delivered=False, error=f"{type(exc).__name__}: {_first_line(str(exc))}")
    if errors:  # some recipient refused though the message went to others (we send to one)
        refusal = next(iter(errors.values()))
        return _refused(refusal.code, f"recipient refused: {refusal.message}")
    return SendOutcome(delivered=True, status_code=250, body=kept_body(reply))


def _refused(code: int, error: str) -> SendOutcome:
    """A refusal: permanent (5xx: `gone`) or transient (4xx: retried)."""
    return SendOutcome(delivered=False, status_code=code, error=error[:300], gone=500 <= code < 600)
