"""The Slack adapter: ticket cards and threads in a channel, and the bolt app for agents' input."""
