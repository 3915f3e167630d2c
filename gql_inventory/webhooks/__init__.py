"""Inbound webhooks (the Stripe route). Signed test events: `gql_inventory.devtools`."""
