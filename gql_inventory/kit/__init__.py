"""Utilities with no domain in them: database plumbing, logs, metrics, tasks, money."""
