"""The README's API tour, run as written against a real `opshub serve`.

Every shell block of the "API tour" section after the run command is executed by bash in a
fresh directory (the CLI and the server share ./opshub.db there, as the README says), with one
edit: `HUB=` points at this test's port instead of 8000. Each command's output is then
checked: health answers, item lists that the examples promise are not empty, and the error
examples give the status their comment names, as problem+json.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[1]
MARK = "@@@ "


def tour_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## API tour", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, flags=re.S)
    assert blocks[0].strip().startswith("./scripts/run"), "the tour starts with the run command"
    return blocks[1:]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def tour_dir(tmp_path: Path) -> Path:
    venv = Path(sys.prefix)
    if not (venv / "bin" / "activate").exists() or shutil.which("curl") is None:
        pytest.skip("needs the project's virtualenv (bin/activate) and curl")
    (tmp_path / ".venv").symlink_to(venv)
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    return tmp_path


@pytest.fixture
def server(tour_dir: Path) -> Iterator[int]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    proc = subprocess.Popen(
        [str(tour_dir / ".venv" / "bin" / "opshub"), "serve", "--port", str(port)],
        cwd=tour_dir,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"opshub serve did not become ready: {proc.stderr.read() if proc.stderr else ''}")
            time.sleep(0.1)
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


def run_tour(tour_dir: Path, port: int) -> list[tuple[str, str]]:
    """Run the blocks in one bash; return (command, its output) for every command line."""
    lines: list[str] = []
    for block in tour_blocks():
        for line in block.splitlines():
            if line.startswith("HUB=http://127.0.0.1:8000"):
                line = f"HUB=http://127.0.0.1:{port}"
            if line.strip() and not line.lstrip().startswith("#"):
                lines.append(f"echo {shlex.quote(MARK + line)}")
            lines.append(line)
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    done = subprocess.run(
        ["bash", "-c", "set -u\n" + "\n".join(lines)],
        cwd=tour_dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    outputs: list[tuple[str, str]] = []
    for chunk in done.stdout.split(MARK)[1:]:
        command, _, output = chunk.partition("\n")
        outputs.append((command, output))
    return outputs


def test_readme_api_tour_works_as_written(tour_dir: Path, server: int) -> None:
    outputs = run_tour(tour_dir, server)
    curls = [(c, o) for c, o in outputs if c.startswith("curl ")]
    assert len(curls) >= 25, "the tour's curl commands were all found"
    for command, output in curls:
        body: Any = json.loads(output)  # every answer is JSON (problem+json for errors)
        promised = re.search(r"# (\d{3}):", command)
        if "/sync" in command:
            # The examples configure no sources: the README says starting a sync answers 404.
            assert body["status"] == 404, (command, body)
        elif "/runs" in command:
            assert body == {"runs": []}, (command, body)
        elif promised:
            assert body["status"] == int(promised.group(1)), (command, body)
            assert body["title"] and body["detail"], (command, body)
        elif "/history" in command:
            assert body["item_id"] == "acme-jira:10001" and body["transitions"], (command, body)
            assert body["start"] in {"seen", "before_history", "not_started"}, (command, body)
        elif "/v1/items" in command and "/tree" not in command and "include=raw" not in command:
            assert body["items"], f"{command} promises items but found none"
        elif "/v1/items/" in command:
            assert body["id"] == "acme-jira:10001", (command, body)
            if "include=raw" in command:
                assert body["raw"], command
        elif "/v1/changes" in command:
            assert body["changes"], command
        elif "/v1/insights/flow" in command:
            assert body["throughput"]["total"] > 0 and body["cycle_time"]["points"], (command, body)
        elif "/v1/insights/forecast" in command:
            assert body["basis"]["history_weeks"] == 12, (command, body)
        elif "/v1/roadmap" in command:
            assert body["roadmap"] or body["uncovered"], (command, body)
        elif "/v1/people" in command or "/v1/sources" in command:
            assert isinstance(body, dict) and "status" not in body, (command, body)
    pages = [json.loads(o) for c, o in curls if re.search(r"limit=10\b", c)]
    first, second = pages[0]["items"], pages[-1]["items"]
    assert {i["id"] for i in first}.isdisjoint({i["id"] for i in second}), "the cursor moved on"
