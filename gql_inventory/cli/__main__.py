"""``python -m gql_inventory.cli``: the `gql-inventory` command line."""

from gql_inventory.cli import app

app()
