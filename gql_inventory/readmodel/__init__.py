"""The read model of one process: stock projection, catalog snapshot, loaders."""
