"""Workflows: each takes a session, returns values or raises domain errors; no HTTP."""
