"""Mappings: declarative specs (one per tool) that turn a tool's raw record into a WorkItem."""
