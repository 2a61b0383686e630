"""Integrations of troth's gates with agent frameworks and protocols (each needs its extra)."""
