"""The reserveStock front: the group-commit batcher that owns its connection and COMMIT."""
