"""Run `opshub ARGS...` under cProfile in every thread, merged into one stats file.

    python bench/_profile_all_threads.py OUT.prof sync bench --full

`python -m cProfile` sees only the main thread, and a sync maps and stores its pages in
worker threads (`asyncio.to_thread`). `threading.setprofile` runs a hook first thing in
every thread started afterwards; the hook starts a profiler of that thread's own
(https://docs.python.org/3/library/threading.html#threading.setprofile).
"""

from __future__ import annotations

import cProfile
import pstats
import sys
import threading
from typing import Any

from _opshub_cli import run_cli  # a sibling module: these run as scripts

profiles: list[cProfile.Profile] = []


def _start_thread_profile(*_: Any) -> None:
    sys.setprofile(None)  # this hook's job is done in this thread: hand over to cProfile
    profile = cProfile.Profile()
    profiles.append(profile)
    profile.enable()


def main() -> None:
    out, args = sys.argv[1], sys.argv[2:]
    threading.setprofile(_start_thread_profile)
    main_profile = cProfile.Profile()
    sys.argv = ["opshub", *args]
    main_profile.enable()
    try:
        from hub.cli import app  # the imports are part of the start-up

        run_cli(app)
    finally:
        main_profile.disable()
        stats = pstats.Stats(main_profile)
        for profile in profiles:
            profile.disable()
            stats.add(profile)
        stats.dump_stats(out)


if __name__ == "__main__":
    main()
