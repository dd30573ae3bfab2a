"""`opshub` (the console script, pyproject.toml) and `python -m hub`: the CLI's entry point.

It only keeps out an import the hub never uses before handing over to `hub.cli.app`:
httpcore imports `trio` whenever it is installed, to pick its locks by the async library it
runs under (httpcore/_synchronization.py). The hub runs on asyncio only, and `trio` is not in
requirements.lock, but the development lock has it (selenium needs it), where it cost every
`opshub` command about 0.1-0.2 CPU-s of start-up (issue 13: `opshub sync` is timed whole).
A `None` in `sys.modules` makes `import trio` raise ImportError
(https://docs.python.org/3/reference/import.html#the-module-cache), which httpcore handles
as "trio is not installed". Tests and other programs that import `hub.cli` themselves keep
`trio` as they have it.
"""

from __future__ import annotations

import sys


def main() -> None:
    sys.modules.setdefault("trio", None)  # type: ignore[arg-type]
    from hub.cli import app

    app()


if __name__ == "__main__":
    main()
