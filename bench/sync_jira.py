"""The Jira sync benchmark (issue 3): one command, the figures and their targets.

    .venv/bin/python bench/sync_jira.py [--sizes 20000,100000] [--latency 0.05]
                                        [--backend sqlite|postgresql] [--runs 1]

Starts the fake Jira in its own process (`python -m fakes.jira --issues N --latency L`),
then for a full sync of each size into a fresh store prints wall time, issues/s, CPU
seconds per 1,000 issues, peak RSS (a fresh process per size), requests; the page-latency
floor and the measured bare fetch loop, and the hub's overhead over both; the requests of an
incremental run with nothing changed; and normalisation alone (raw bytes -> stored
WorkItem, no network) in issues/s per core. Targets are printed beside the figures. Any
other option of bench/sync.py is passed through (see `bench/sync.py --help`).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import sync


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not any(a == "--sizes" or a.startswith(("--sizes=", "--size")) for a in argv):
        argv += ["--sizes", "20000,100000"]
    sync.main(["--tools", "jira", *argv])


if __name__ == "__main__":
    main()
