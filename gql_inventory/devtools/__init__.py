"""Development tooling: not used by the running service (CLI helpers, test fixtures)."""
