"""Callbacks that keep their place in the agents' queue (filled in below)."""
