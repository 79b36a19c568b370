"""The persistent state of threaddesk: models, sessions and atomic operations.

Nothing in this package imports another threaddesk package.
"""
