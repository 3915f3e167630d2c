"""gql-inventory: a GraphQL inventory service (stock levels, reservations, orders, ledger)."""

__version__ = "0.1.0"
