"""Minor units <-> decimal amounts, per ISO 4217 currency exponent.

Amounts are stored as integers in the currency's minor units. Zero-decimal
currencies follow Stripe's list ("Zero-decimal currencies",
https://docs.stripe.com/currencies#zero-decimal); three-decimal ones ISO 4217.
"""

from __future__ import annotations

from decimal import Decimal

ZERO_DECIMAL = frozenset(
    "BIF CLP DJF GNF JPY KMF KRW MGA PYG RWF UGX VND VUV XAF XOF XPF".split()  # noqa: SIM905
)
THREE_DECIMAL = frozenset({"BHD", "JOD", "KWD", "OMR", "TND"})


def exponent(currency_code: str) -> int:
    """Digits after the decimal point in `currency_code` (0, 2 or 3)."""
    code = currency_code.upper()
    if code in ZERO_DECIMAL:
        return 0
    if code in THREE_DECIMAL:
        return 3
    return 2


def to_decimal(minor_units: int, currency_code: str) -> Decimal:
    """``1999, "USD"`` -> ``Decimal("19.99")``; ``1999, "JPY"`` -> ``Decimal("1999")``."""
    return Decimal(minor_units).scaleb(-exponent(currency_code))


def to_minor_units(amount: Decimal, currency_code: str) -> int:
    """``Decimal("19.99"), "USD"`` -> ``1999``.

    Raises ValueError when `amount` has more digits than the currency allows.
    """
    scaled = amount.scaleb(exponent(currency_code))
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{amount} has too many decimals for {currency_code}")
    return int(scaled)


def format_money(minor_units: int, currency_code: str) -> str:
    """``5950, "usd"`` -> ``"59.50 USD"``: the amount as the API's `Money` shows it (a
    decimal with the currency's digits), then the upper-case ISO 4217 code; for text
    meant for people (attention reasons, payment history)."""
    return f"{to_decimal(minor_units, currency_code)} {currency_code.upper()}"
