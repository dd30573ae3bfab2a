"""Benchmark: `opshub demo` time to first page, as a new user gets it.

    .venv/bin/python bench/demo.py                       # fresh venv, install, 3 demo starts
    .venv/bin/python bench/demo.py --opshub /path/to/venv/bin/opshub --runs 5

Without `--opshub`, the project is installed (not editable, no dev extras, byte-compiled as
pip does by default) from a copy of what ships into a fresh virtual environment in a temporary
directory, and the install time is printed. Then `opshub demo --port P` is started `--runs`
times; each run is timed from the command's start to `/readyz` answering 200 and to the first
`GET /v1/items` page with the read key it prints, then stopped with SIGINT.
Target (issue 11): first page within 60 s on the 2-core machine once installed.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import venv
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ("pyproject.toml", "README.md", "hub", "connectors", "mappings", "fakes")


def install(workdir: Path) -> Path:
    source = workdir / "src"
    source.mkdir()
    for name in SHIPPED:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(path, source / name)
    env_dir = workdir / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = str(env_dir / "bin" / "python")
    pip = [sys.executable, "-m", "pip", "--python", python, "install", "--quiet", str(source)]
    done = subprocess.run(pip, capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"pip install failed:\n{done.stderr}")
    return env_dir / "bin" / "opshub"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def one_run(opshub: Path, cwd: Path) -> tuple[float, float]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    started = time.monotonic()
    proc = subprocess.Popen(
        [str(opshub), "demo", "--port", str(port)],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    try:
        key = None
        for line in proc.stdout:
            if match := re.search(r"read key:\s+(\S+)", line):
                key = match.group(1)
                break
        if key is None:
            raise SystemExit(f"the demo ended before printing its read key (exit {proc.wait()})")
        base = f"http://127.0.0.1:{port}"
        while True:
            try:
                if httpx.get(f"{base}/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.02)
        ready = time.monotonic() - started
        page = httpx.get(f"{base}/v1/items", headers={"Authorization": f"Bearer {key}"})
        page.raise_for_status()
        return ready, time.monotonic() - started
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--opshub", type=Path, help="an installed `opshub` (default: install into a fresh venv)")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="opshub-bench-demo-") as tmp:
        workdir = Path(tmp)
        opshub = args.opshub
        if opshub is None:
            started = time.monotonic()
            opshub = install(workdir)
            print(f"install into a fresh venv (pip, non-editable, no dev extras): {time.monotonic() - started:.1f} s")
        for run in range(1, args.runs + 1):
            ready, page = one_run(opshub, workdir)
            load = os.getloadavg()[0]
            print(
                f"run {run}: /readyz 200 after {ready:.1f} s, first /v1/items page after {page:.1f} s (load {load:.2f})"
            )


if __name__ == "__main__":
    main()
