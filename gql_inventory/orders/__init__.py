"""Orders, payments and refunds: checkout, provider events, refunds. Never commits."""
