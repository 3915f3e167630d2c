"""Inbound webhooks (Stripe) and the signed test events the CLI and tests post."""
