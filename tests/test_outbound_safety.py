"""Webhook URL safety (SSRF) and signing secrets at rest (issue 17 item 3)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from standardwebhooks.webhooks import Webhook

from gql_inventory.domain.errors import UrlNotAllowed
from gql_inventory.outbound.secrets import SecretBox, new_secret, secret_box, signing_secrets
from gql_inventory.outbound.urls import check_url
from gql_inventory.settings import ConfigurationError, Settings

REFUSED_WHEN_PUBLIC_ONLY = [
    ("http://93.184.215.14/hook", "https"),
    ("https://127.0.0.1/hook", "loopback"),
    ("https://localhost:8443/hook", "loopback"),  # a name that resolves to 127.0.0.1
    ("https://10.1.2.3/hook", "private"),
    ("https://192.168.0.10/hook", "private"),
    ("https://172.16.5.5/hook", "private"),
    ("https://[::1]/hook", "loopback"),
    ("https://[::ffff:127.0.0.1]/hook", "loopback"),
    ("https://[fe80::1]/hook", "link-local"),
    ("https://169.254.10.10/hook", "link-local"),
    ("https://100.64.0.1/hook", "carrier-grade"),
    ("https://0.0.0.0/hook", "unspecified"),
    ("https://224.0.0.1/hook", "multicast"),
]


@pytest.mark.parametrize(("url", "why"), REFUSED_WHEN_PUBLIC_ONLY)
async def test_private_and_plain_urls_are_refused_outside_development(url: str, why: str) -> None:
    with pytest.raises(UrlNotAllowed, match=why):
        await check_url(url, allow_private=False)
    await check_url(url, allow_private=True)  # development: allowed


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("https://169.254.169.254/latest/meta-data", "metadata"),
        ("https://[fd00:ec2::254]/", "metadata"),
        ("ftp://example.com/x", "absolute https"),
        ("https:///nohost", "absolute https"),
        ("https://user:pw@example.com/", "user info"),
        ("https://example.com/#frag", "fragment"),
        ("https://example.com:99999/", "malformed"),
        ("https://" + "a" * 2050 + ".com/", "longer"),
        ("https://no-such-host.invalid/", "does not resolve"),
    ],
)
async def test_urls_refused_even_in_development(url: str, why: str) -> None:
    with pytest.raises(UrlNotAllowed, match=why):
        await check_url(url, allow_private=True)


async def test_a_public_address_is_allowed() -> None:
    await check_url("https://93.184.215.14:8443/hooks?x=1", allow_private=False)


def test_private_urls_are_allowed_only_in_development_unless_set() -> None:
    assert Settings(environment="development").private_urls_allowed()
    assert not Settings(environment="production").private_urls_allowed()
    assert Settings(
        environment="production", webhook_allow_private_urls=True
    ).private_urls_allowed()
    assert not Settings(webhook_allow_private_urls=False).private_urls_allowed()


def test_secrets_are_sealed_and_sign_as_standard_webhooks_verifies(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "pgdata")
    box = secret_box(settings)
    secret = new_secret()
    assert secret.startswith("whsec_")
    token = box.seal(secret)
    assert secret[6:] not in token
    assert secret_box(settings).open(token) == secret  # the same development key file
    assert (tmp_path / "webhook-secrets.key").stat().st_mode & 0o077 == 0
    signature = Webhook(box.open(token)).sign("msg_1", datetime.now(UTC), '{"a":1}')
    assert signature.startswith("v1,")


def test_a_rotation_signs_with_both_secrets_during_the_overlap() -> None:
    box = SecretBox(Fernet.generate_key())
    old, new = new_secret(), new_secret()
    now = datetime.now(UTC)
    both = signing_secrets(box, box.seal(new), box.seal(old), now + timedelta(hours=24), now)
    assert both == [new, old]
    after = signing_secrets(box, box.seal(new), box.seal(old), now, now + timedelta(seconds=1))
    assert after == [new]


def test_keys_are_required_in_production_and_must_fit() -> None:
    with pytest.raises(ConfigurationError, match="required in production"):
        secret_box(Settings(environment="production"))
    with pytest.raises(ConfigurationError, match="not a Fernet key"):
        secret_box(Settings(webhook_secrets_key="short"))
    sealed = SecretBox(Fernet.generate_key()).seal(new_secret())
    with pytest.raises(ConfigurationError, match="not the key"):
        SecretBox(Fernet.generate_key()).open(sealed)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("webhook_retry_schedule", "5,x"),
        ("webhook_retry_schedule", "0,5"),
        ("webhook_retry_schedule", ",".join(["5"] * 21)),
        ("webhook_retry_schedule", "700000"),
        ("alert_emails", "ops@example.com, not-an-address"),
        ("alert_emails", "a@b.c\r\nBcc: x@y.z"),
        ("stripe_event_retention_days", "3"),
    ],
)
def test_hostile_outbound_settings_are_refused(
    name: str, value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(name.upper(), value)
    with pytest.raises(ValueError, match=name):
        Settings()
