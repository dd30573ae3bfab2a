"""`opshub demo` as a new user runs it: the project installed (not editable, no dev extras) into
a fresh virtual environment, the command started as a subprocess. It must come up, have synced
all seven sources, move an item by a webhook, and stop cleanly on Ctrl-C (SIGINT), removing its
throwaway data. Timings are printed (pytest -s) for the record; bench/demo.py measures them.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import venv
from pathlib import Path

import httpx
import pytest

from fakes.common import free_port

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ("pyproject.toml", "README.md", "hub", "connectors", "mappings", "fakes")


def _install(tmp_path: Path) -> Path:
    """A fresh venv with the project installed from a copy of what ships (so the build leaves
    nothing in the work tree, and the demo cannot lean on bench/ or tests/)."""
    source = tmp_path / "src"
    source.mkdir()
    for name in SHIPPED:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(path, source / name)
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    # This environment's pip installs into the new one (`--python`), which saves bootstrapping
    # pip there; `--no-compile` saves byte-compiling every dependency (the demo's first start
    # compiles what it imports). Both only make the test faster: what gets installed is the same.
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(env_dir / "bin" / "python"),
            "install",
            "--quiet",
            "--no-compile",
            str(source),
        ],
        check=True,
        timeout=600,
        capture_output=True,
    )
    return env_dir / "bin" / "opshub"


class Output:
    """The demo's console, read in a thread so that a silent process never blocks the test."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        assert proc.stdout is not None
        stream = proc.stdout
        self._thread = threading.Thread(target=lambda: self.lines.extend(iter(stream.readline, "")), daemon=True)
        self._thread.start()

    def wait_for(self, pattern: str, proc: subprocess.Popen[str], timeout: float) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if match := re.search(pattern, line):
                    return match
            if proc.poll() is not None:
                break
            time.sleep(0.05)
        pytest.fail(f"no line matching {pattern!r} in the demo's output:\n{''.join(self.lines)}")

    def text(self) -> str:
        return "".join(self.lines)


def _last_seq(client: httpx.Client) -> int:
    after = 0
    while True:
        page = client.get("/v1/changes", params={"after": after, "limit": 500}).json()
        if not page["changes"]:
            return after
        after = page["next_after"]


@pytest.mark.slow
def test_opshub_demo_from_a_fresh_install(tmp_path: Path) -> None:
    started = time.monotonic()
    opshub = _install(tmp_path)
    installed = time.monotonic() - started
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    demo_started = time.monotonic()
    proc = subprocess.Popen(
        [str(opshub), "demo", "--port", str(port), "--trickle-seconds", "0.5"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        output = Output(proc)
        key = output.wait_for(r"read key:\s+(\S+)", proc, timeout=120).group(1)
        workdir = Path(output.wait_for(r"sources:\s+(\S+)/opshub\.toml", proc, timeout=5).group(1))
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=10) as client:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if client.get("/readyz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, output.text()
                time.sleep(0.05)
            first_page = client.get("/v1/items")
            ready = time.monotonic() - demo_started
            assert first_page.status_code == 200 and first_page.json()["items"]

            sources = client.get("/v1/sources").json()["sources"]
            assert sorted(s["tool"] for s in sources) == sorted(
                ["jira", "github", "gitlab", "linear", "redmine", "productboard", "aha"]
            )
            for source in sources:
                assert source["status"] == "ok" and source["item_count"] > 0, source

            # A webhook the demo sends changes an item: the change log grows, and the item's
            # status is the one the demo printed for it.
            baseline = _last_seq(client)
            deadline = time.monotonic() + 30
            moved = None
            while moved is None and time.monotonic() < deadline:
                for change in client.get("/v1/changes", params={"after": baseline}).json()["changes"]:
                    item = client.get(f"/v1/items/{change['item_id']}").json()
                    line = re.search(
                        rf"webhook: {item['tool']} {re.escape(item['key'])} .*-> (\w+), webhook 202", output.text()
                    )
                    if line and line.group(1) == item["status"]["category"]:
                        moved = item
                        break
                time.sleep(0.2)
            assert moved is not None, output.text()

        proc.send_signal(signal.SIGINT)
        # uvicorn ends on the signal it caught once it has shut down: 130 is Ctrl-C's exit status.
        assert proc.wait(timeout=30) in (0, 130), output.text()
        assert "Traceback" not in output.text() and "Error" not in output.text(), output.text()
        assert not workdir.exists(), "the throwaway database and config are removed at exit"
        print(f"\ninstall {installed:.1f} s; demo: /readyz and a first /v1/items page after {ready:.1f} s")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
