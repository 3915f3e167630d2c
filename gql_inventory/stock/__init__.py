"""The stock domain: levels, ledger, reservations, adjustments, expiry. Never commits."""
