"""Hooks: AWS connections, and the choice of backend from the connection."""
