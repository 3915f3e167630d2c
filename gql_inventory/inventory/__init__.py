"""The domain: one module per use case. No Strawberry imports here, and nothing here commits.

Every function takes an `AsyncSession` inside a transaction opened by the caller
(a resolver, the webhook route, a CLI command) and raises a `DomainError`
subclass for an expected refusal.
"""
