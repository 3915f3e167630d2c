"""The local cluster and its fault drill: HAProxy before three `serve`, PgBouncer before
PostgreSQL, Redis as the broadcast backend (docs/scaling.md#local-cluster-drill)."""
