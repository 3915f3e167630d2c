"""Endpoint signing secrets: made, encrypted at rest, and chosen for signing.

A secret is ``whsec_`` + base64 of 24 random bytes, as Standard Webhooks gives them
(https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md,
"Signature scheme"). The database holds only its Fernet token (cryptography's Fernet:
AES-128-CBC + HMAC-SHA256) under `WEBHOOK_SECRETS_KEY`, so a dump alone cannot sign.
"""

from __future__ import annotations

import base64
import os
import secrets as random
from datetime import datetime
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from gql_inventory.settings import ConfigurationError, Settings

PREFIX = "whsec_"
_KEY_FILE = "webhook-secrets.key"


def new_secret() -> str:
    """A fresh signing secret: ``whsec_`` + base64 of 24 random bytes."""
    return PREFIX + base64.b64encode(random.token_bytes(24)).decode()


class SecretBox:
    """Encrypts and decrypts signing secrets under one Fernet key."""

    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(key)

    def seal(self, secret: str) -> str:
        """The stored form (a Fernet token, text) of `secret`."""
        return self._fernet.encrypt(secret.encode()).decode()

    def open(self, token: str) -> str:
        """The secret a stored token holds. Raises `ConfigurationError` when the token was
        sealed under another key (WEBHOOK_SECRETS_KEY changed)."""
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            raise ConfigurationError(
                "WEBHOOK_SECRETS_KEY",
                "does not open the stored endpoint secrets: it is not the key they were "
                "sealed with",
            ) from None


def secret_box(settings: Settings) -> SecretBox:
    """The box of `settings`: `webhook_secrets_key`, or in development a key kept in
    ``var/webhook-secrets.key`` (made, mode 0600, on first use).

    Raises `ConfigurationError` in production without a key, or for a malformed key.
    """
    if settings.webhook_secrets_key is not None:
        key = settings.webhook_secrets_key.get_secret_value().encode()
    elif settings.environment == "production":
        raise ConfigurationError(
            "WEBHOOK_SECRETS_KEY",
            "is required in production: give a Fernet key, e.g. from "
            '`python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key())"`',
        )
    else:
        key = _development_key(settings.data_dir.parent / _KEY_FILE)
    try:
        return SecretBox(key)
    except ValueError:
        raise ConfigurationError(
            "WEBHOOK_SECRETS_KEY", "is not a Fernet key (32 url-safe base64-encoded bytes)"
        ) from None


def _development_key(path: Path) -> bytes:
    """The development key in `path`, made on first use (readable by its owner only)."""
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first
        return path.read_bytes().strip()
    with os.fdopen(fd, "wb") as handle:
        handle.write(key)
    return key


def signing_secrets(
    box: SecretBox,
    current: str,
    previous: str | None,
    previous_until: datetime | None,
    now: datetime,
) -> list[str]:
    """The secrets that sign a message now: the current one, and during a rotation's
    overlap (`now` before `previous_until`) the previous one too (Standard Webhooks
    allows several space-separated signatures). Arguments are stored tokens."""
    found = [box.open(current)]
    if previous is not None and previous_until is not None and now < previous_until:
        found.append(box.open(previous))
    return found
