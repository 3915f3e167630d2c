"""Thin resolvers: turn GraphQL input into a domain call, and its result into a payload."""
