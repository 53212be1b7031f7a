"""Triggers: one for every job kind."""
