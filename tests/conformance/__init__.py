"""Connector conformance: one suite every connector passes (see cases.py to add one)."""
