"""The graphql-transport-ws edge: handler, connection limits, shared fan-out."""
