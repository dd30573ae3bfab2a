"""`opshub demo`: the fakes, a throwaway database, a first sync, then the API with a trickle of
webhooks, until Ctrl-C. The steps are in `run_demo`; the command line is in hub/cli.py.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType

import uvicorn

from hub.cli_support import CliError
from hub.demo.environment import DemoError, allow_demo_egress, demo_environment
from hub.settings import Settings
from hub.store import Store


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


class _DemoServer(uvicorn.Server):
    """uvicorn's server, which also stops the webhook trickle as soon as Ctrl-C arrives (before
    the API shuts down, so no webhook is sent to a closed port)."""

    def __init__(self, config: uvicorn.Config, stop: threading.Event) -> None:
        super().__init__(config)
        self.stop = stop

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.stop.set()
        super().handle_exit(sig, frame)


def run_demo(
    settings: Settings,
    listener: socket.socket,
    *,
    database_url: str | None,
    seed: int,
    trickle_seconds: float | None,
    say: Callable[[str], None],
) -> None:
    """Serve the demo on `listener` (already bound) until the server stops (Ctrl-C).

    With no `database_url` the data lives in a SQLite file in a temporary directory that is
    removed at exit; with one, it is migrated and the demo's sources are synced into it.
    """
    from hub.api.app import create_app
    from hub.demo.trickle import WebhookTrickle

    started = time.monotonic()
    host, port = listener.getsockname()[:2]
    with contextlib.ExitStack() as stack:
        if threading.current_thread() is threading.main_thread():
            # SIGTERM (docker stop, systemd, kill) unwinds like Ctrl-C, so the throwaway data is
            # removed: uvicorn hands the signal back to this handler once it has shut down.
            previous = signal.signal(signal.SIGTERM, _exit_on_sigterm)
            stack.callback(signal.signal, signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="opshub-demo-")))
        url = database_url or f"sqlite:///{workdir / 'demo.db'}"
        say(
            f"opshub demo: building Northwind's tools and syncing them into {'the database' if database_url else 'a throwaway database'} ..."
        )
        try:
            store = Store.open(url, migrate_schema=True)
        except ValueError as exc:  # unsupported backend
            raise CliError(f"bad database URL: {exc}") from None
        stack.callback(store.close)
        try:
            env = stack.enter_context(demo_environment(store, workdir, seed=seed))
        except DemoError as exc:
            raise CliError(str(exc)) from None
        assert env.keys is not None
        items = sum(run.fetched for run in env.runs)
        settings = allow_demo_egress(settings).model_copy(update={"database_url": url, "config": env.config_path})
        app = create_app(store=store, settings=settings, config=env.config)
        stop = threading.Event()
        # The demo prints its own lines; uvicorn's INFO lines would also come from the fakes'
        # servers (one logger), so only warnings and errors are logged.
        server = _DemoServer(uvicorn.Config(app, log_level="warning", access_log=False), stop)
        shown_host = "127.0.0.1" if host in ("0.0.0.0", "::") else host  # noqa: S104 - a display name only
        base = f"http://{shown_host}:{port}"
        say(f"synced {len(env.runs)} sources ({items} items) in {time.monotonic() - started:.1f} s")
        say(f"OpsHub demo serving on {base}  (API docs: {base}/docs)")
        say(f"  read key:  {env.keys.read}")
        say(f"  admin key: {env.keys.admin}")
        say(f'  try:       curl -H "Authorization: Bearer {env.keys.read}" {base}/v1/roadmap')
        say(f"  sources:   {env.config_path} (the fakes listen on 127.0.0.1; removed at exit)")
        if trickle_seconds:
            trickle = WebhookTrickle(env, base, seed=seed)
            stack.callback(trickle.close)
            thread = threading.Thread(
                target=trickle.run,
                args=(stop, trickle_seconds),
                kwargs={"echo": lambda move: say(f"  webhook: {move.describe()}")},
                name="opshub-demo-trickle",
                daemon=True,
            )
            thread.start()
            stack.callback(thread.join, 10)
            say(f"  a webhook every {trickle_seconds:g} s moves an item forward (--no-trickle to stop that)")
        stack.callback(stop.set)
        say(
            "Ctrl-C stops the demo"
            + (" (its data stays in the database)." if database_url else " and removes its data.")
        )
        server.run(sockets=[listener])
