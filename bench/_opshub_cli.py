"""Run the `opshub` CLI app in-process, as the console script does (for the bench wrappers
that time or trace a real `opshub` run: _cpu_split.py, _profile_all_threads.py, _sync_plans.py).
They run as scripts, so they import this as a sibling module."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def run_cli(app: Callable[[], Any]) -> None:
    """Call the typer app; an exit code of 0 (or none) is a normal end, any other is raised."""
    try:
        app()
    except SystemExit as exc:
        if exc.code not in (0, None):
            raise
