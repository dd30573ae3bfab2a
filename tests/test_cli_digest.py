"""`opshub report digest` on the README example (examples/items.jsonl + history.jsonl).

The Markdown digest of the README's week is the golden file tests/golden/digest_example.md
(regenerate with OPSHUB_UPDATE_GOLDEN=1 after a deliberate change, and read the diff). It is
parsed with markdown-it-py: it must render, and every item it names (a key such as CHK-7,
acme/web#108, or a hub id) must sit inside a link to the item in its tool.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from click.testing import Result
from markdown_it import MarkdownIt
from typer.testing import CliRunner

from hub.cli import app
from hub.store import Store

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "golden" / "digest_example.md"
WEEK = ["--since", "2026-09-28", "--until", "2026-10-05"]
ITEM_NAME = re.compile(r"\b[A-Z]+-\d+\b|\b[\w.-]+/[\w.-]+#\d+|\bacme-[a-z]+:\S+")


@pytest.fixture
def example_db(db_url: str) -> str:
    store = Store.open(db_url)
    store.close()
    for args in (
        ["import", str(ROOT / "examples" / "items.jsonl")],
        ["import-history", str(ROOT / "examples" / "history.jsonl")],
    ):
        result = CliRunner().invoke(app, ["--database-url", db_url, *args])
        assert result.exit_code == 0, result.output
    return db_url


def run(db_url: str, *args: str) -> Result:
    return CliRunner().invoke(app, ["--database-url", db_url, "report", "digest", *args])


def test_markdown_digest_of_the_readme_example_matches_the_golden_file(example_db: str) -> None:
    result = run(example_db, *WEEK, "--markdown")
    assert result.exit_code == 0, result.output
    if os.environ.get("OPSHUB_UPDATE_GOLDEN"):
        GOLDEN.write_text(result.stdout, encoding="utf-8")
    assert result.stdout == GOLDEN.read_text(encoding="utf-8")


def links_and_bare_names(markdown: str) -> tuple[list[str], list[str]]:
    """The link targets of `markdown`, and the item names in its text outside any link."""
    tokens = MarkdownIt("commonmark").enable("table").parse(markdown)
    links, bare = [], []
    for token in tokens:
        inside = 0
        for child in token.children or []:
            if child.type == "link_open":
                inside += 1
                links.append(str(child.attrs["href"]))
            elif child.type == "link_close":
                inside -= 1
            elif child.type in ("text", "code_inline") and not inside:
                bare.extend(ITEM_NAME.findall(child.content))
    return links, bare


def test_the_check_finds_names_outside_links() -> None:
    sample = "- [CHK-1 Checkout](https://x.example/CHK-1) blocks CHK-7 and `acme/web#108`, acme-jira:10007\n"
    assert links_and_bare_names(sample) == (["https://x.example/CHK-1"], ["CHK-7", "acme/web#108", "acme-jira:10007"])


def test_golden_digest_renders_and_names_items_only_inside_links() -> None:
    text = GOLDEN.read_text(encoding="utf-8")
    tokens = MarkdownIt("commonmark").enable("table").parse(text)
    assert next(t.content for t in tokens if t.type == "inline").startswith("Status digest")
    assert any(t.type == "table_open" for t in tokens)
    links, bare = links_and_bare_names(text)
    assert bare == []
    assert links and all(href.startswith("https://") for href in links)
    # Every item the digest names is an example item, linked to its own URL.
    urls = {json.loads(line)["url"] for line in (ROOT / "examples" / "items.jsonl").read_text().splitlines()}
    assert set(links) <= urls


def test_json_is_the_api_document(example_db: str) -> None:
    result = run(example_db, *WEEK, "--json")
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["totals"]["counts"]["reopened"] == 1
    assert body["totals"]["points"]["reopened"]["items"][0]["key"] == "CHK-7"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "last week"], "--since must be a date or time"),
        (["--since", "2026-10-05", "--until", "2026-10-01"], "--since must be before --until"),
    ],
)
def test_bad_input_is_one_line_and_exit_1(example_db: str, args: list[str], message: str) -> None:
    result = run(example_db, *args)
    assert result.exit_code == 1
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_the_readme_excerpt_is_lines_of_the_golden_file() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Status digest\n", 1)[1]  # the excerpt has headings of its own
    excerpt = re.findall(r"```markdown\n(.*?)```", section, flags=re.S)[:1]
    assert excerpt
    golden = GOLDEN.read_text(encoding="utf-8").splitlines()
    shown = [line for line in excerpt[0].splitlines() if line != "..."]
    assert len(shown) > 10
    assert [line for line in shown if line not in golden] == []
