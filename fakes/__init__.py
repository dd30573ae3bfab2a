"""Fake tool servers (ASGI apps) for tests and benchmarks: `fakes.jira.FakeJira`, shared parts in `fakes.common`."""
