"""Outbound events: the transactional outbox, its delivery by webhook and e-mail (issue 17)."""
