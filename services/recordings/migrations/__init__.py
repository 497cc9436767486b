"""Numbered, forward-only SQL migrations of the recordings schema (applied by store.py)."""
