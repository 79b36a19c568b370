"""The Telegram adapter: a ticket is a forum topic (or a reply chain) in the support group."""
