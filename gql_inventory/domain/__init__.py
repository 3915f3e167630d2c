"""The domain kernel shared by stock and orders: errors, unit of work, idempotency.

Never commits."""
