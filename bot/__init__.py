"""Adapters and wiring: messengers, the scheduler, settings and the `threaddesk` command line."""
