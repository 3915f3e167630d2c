"""A cache of whole responses to stock and catalog reads, in front of Strawberry
(docs/adr/0012-read-response-cache.md).

- `trace`: the per-request record of reads that went to the database (loaders mark it);
- `store`: the bounded LRU of response bytes, each with the read-model tag it is valid at;
- `operations`: which request bodies are read operations on the whitelisted root fields;
- `asgi`: the ASGI wrapper of the /graphql route that serves, and fills, the store.

Nothing is imported here, so `gql_inventory.readmodel.loaders` can import `trace` alone.
"""
