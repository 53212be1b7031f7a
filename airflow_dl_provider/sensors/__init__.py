"""Sensors: one for every job kind."""
