"""Use cases: each owns one transaction and is called by handlers, scheduler and CLI."""
