"""Connectors: one package per tool. They yield the tool's raw records and never build WorkItems."""
