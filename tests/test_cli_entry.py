"""Start-up of `opshub` (issue 13 times `opshub sync` whole): the entry point (hub/__main__.py)
starts the CLI without importing `trio`, which httpcore would import whenever it is installed
(the development lock has it), and a source loads its own tool's connector only."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_console_script_is_the_entry_point() -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["opshub"] == "hub.__main__:main"


def test_entry_point_runs_the_cli_without_trio() -> None:
    probe = textwrap.dedent(
        """
        import importlib.util, sys
        assert importlib.util.find_spec("trio") is not None, "trio is not installed: nothing to check"
        from hub.__main__ import main
        sys.argv = ["opshub", "--help"]
        try:
            main()
        except SystemExit as exc:
            assert exc.code in (0, None), exc.code
        print("httpcore" in sys.modules, sys.modules.get("trio") is None)
        """
    )
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    assert done.stdout.splitlines()[-1] == "True True"  # the CLI (httpx and httpcore) loaded, trio not


def test_python_dash_m_hub_is_the_cli() -> None:
    done = subprocess.run([sys.executable, "-m", "hub", "--help"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "Usage" in done.stdout and "sync" in done.stdout


def test_a_source_loads_its_own_connector_only() -> None:
    probe = textwrap.dedent(
        """
        import sys
        from connectors.registry import connector_class
        from connectors.jira import JiraConnector
        assert connector_class("jira") is JiraConnector
        others = ["aha", "github", "gitlab", "linear", "productboard", "redmine"]
        print([tool for tool in others if f"connectors.{tool}" in sys.modules])
        try:
            connector_class("nope")
        except KeyError as exc:
            print(exc.args[0])
        """
    )
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    loaded, unknown = done.stdout.splitlines()[-2:]
    assert loaded == "[]"
    assert unknown == "no connector for tool 'nope' (known: aha, github, gitlab, jira, linear, productboard, redmine)"
