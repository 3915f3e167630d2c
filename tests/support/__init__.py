"""Helpers shared by the tests, one concept per module.

- `catalog`: rows for tests (`make_catalog`, `make_product`, `make_location`).
- `graphql`: GraphQL operations and storefront helpers over the in-process client.
- `scenarios`: many transactions at once (`run_concurrently`) and ledger checks.
- `invariants`: `assert_invariants`, DESIGN.md invariants 1 and 2 on every level.
- `fake_stripe`: a local server speaking Stripe's wire format (`FakeStripe`).
- `payments`: orders awaiting payment, signed Stripe events delivered, rows read back.
- `live`: real uvicorn servers and graphql-transport-ws clients.
- `sinks`: `RecordingSink`, an event sink that keeps what a unit of work publishes.
- `fixtures`: pytest fixtures used by many test files (a plugin, see tests/conftest.py).
"""
