"""Benchmark: HTML -> Markdown for Aha! and Productboard descriptions, in-house vs libraries.

    .venv/bin/python bench/html_markdown.py              # needs: pip install markdownify html2text
    .venv/bin/python bench/html_markdown.py --rounds 2000

Corpus: every HTML string in the real payloads (../shared/fixtures/aha, ../shared/fixtures/
productboard; `OPSHUB_SHARED_FIXTURES` points elsewhere) and in the golden cases'
raw records (tests/golden/aha, tests/golden/productboard), de-duplicated. Each converter
converts the whole corpus `--rounds` times; the figure is conversions per second of this
process's CPU time (the machine is shared: wall time is mostly waiting for a core).

Then each converter is checked on safety probes: script/style/iframe/noscript/svg content
leaking as text, `javascript:`/`data:` links and images kept, `<p>Use *stars*</p>` escaped,
links kept, and the same output twice. The libraries are run with their documented options
(markdownify: ATX headings, `-` bullets; html2text: no line wrapping); "markdownify+safe" is
markdownify with the overrides and `escape_misc` it would need to pass the probes (the
like-for-like speed).

Issue 13 asks for one converter, a library where one is as fast and as safe; the pick is
mappings/transforms/html_markdown.py and its docstring quotes these figures.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mappings.transforms.html_markdown import html_to_markdown  # noqa: E402

SHARED = Path(os.environ.get("OPSHUB_SHARED_FIXTURES") or ROOT.parent / "shared" / "fixtures")
HTML_KEYS = {"body", "description", "value", "html"}

PROBES: list[tuple[str, str, Callable[[str], bool]]] = [
    ("no script/style text", "<script>alert(1)</script><style>p{}</style>ok", lambda md: "alert" not in md),
    (
        "no iframe/noscript/svg text",
        "<iframe>A1</iframe><noscript>A2</noscript><svg><text>A3</text></svg>ok",
        lambda md: "A" not in md,
    ),
    ("no javascript: link", '<a href="javascript:alert(1)">x</a>', lambda md: "javascript" not in md),
    ("no data: image", '<img src="data:image/png;base64,AA" alt="i">', lambda md: "data:" not in md),
    ("link kept", '<a href="https://e.com/a_b">doc</a>', lambda md: "](https://e.com/a_b)" in md),
    ("<p>Use *stars*</p> escaped", "<p>Use *stars*</p>", lambda md: md.strip() == "Use \\*stars\\*"),
    ("_ [ ] escaped", "<p>a_b [c]</p>", lambda md: "\\_" in md and "\\[" in md),
]


def corpus() -> list[str]:
    found: list[str] = []

    def walk(value: Any, key: str | None) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, k)
        elif isinstance(value, list):
            for v in value:
                walk(v, key)
        elif isinstance(value, str) and key in HTML_KEYS and "<" in value and ">" in value:
            found.append(value)

    files = [*SHARED.glob("aha/*.json"), *SHARED.glob("productboard/GET-*.json")]
    files += [p for p in (ROOT / "tests" / "golden").glob("*/*.json") if p.parent.name in ("aha", "productboard")]
    for path in sorted(files):
        if not path.name.endswith(".expected.json"):
            walk(json.loads(path.read_text()), None)
    return list(dict.fromkeys(found))


def converters() -> dict[str, Callable[[str], str]]:
    out: dict[str, Callable[[str], str]] = {"in-house (opshub)": html_to_markdown}
    try:
        from markdownify import MarkdownConverter
    except ImportError:
        print("markdownify not installed: pip install markdownify", file=sys.stderr)
    else:
        plain = MarkdownConverter(heading_style="ATX", bullets="-")

        class SafeConverter(MarkdownConverter):
            """What markdownify would need to pass the probes (overrides, not options)."""

            def convert_a(self, el: Any, text: str, parent_tags: Any) -> str:
                href = (el.get("href") or "").strip().lower()
                return (
                    text
                    if not href.startswith(("http://", "https://", "mailto:", "/", "#"))
                    else super().convert_a(el, text, parent_tags)  # type: ignore[misc]
                )

            def convert_img(self, el: Any, text: str, parent_tags: Any) -> str:
                src = (el.get("src") or "").strip().lower()
                return (
                    super().convert_img(el, text, parent_tags)  # type: ignore[misc]
                    if src.startswith(("http://", "https://"))
                    else ""
                )

            def convert_iframe(self, el: Any, text: str, parent_tags: Any) -> str:
                return ""

            convert_noscript = convert_svg = convert_template = convert_iframe

        safe = SafeConverter(heading_style="ATX", bullets="-", escape_misc=True)
        out["markdownify"] = lambda html: plain.convert(html).strip()
        out["markdownify+safe"] = lambda html: safe.convert(html).strip()
    try:
        import html2text
    except ImportError:
        print("html2text not installed: pip install html2text", file=sys.stderr)
    else:

        def h2t(html: str) -> str:
            parser = html2text.HTML2Text()
            parser.body_width = 0
            return parser.handle(html).strip()

        out["html2text"] = h2t
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=500, help="passes over the corpus per converter")
    args = parser.parse_args()
    texts = corpus()
    if not texts:
        sys.exit(f"no HTML found under {SHARED} (set OPSHUB_SHARED_FIXTURES)")
    chars = sum(map(len, texts))
    print(
        f"corpus: {len(texts)} HTML descriptions, {chars} characters (mean {chars / len(texts):.0f}), rounds {args.rounds}"
    )
    print(f"{'converter':20} {'conversions/s':>14} {'us/conv':>8}  safety probes failed")
    for name, convert in converters().items():
        for text in texts:  # warm-up (imports, regex compilation)
            convert(text)
        start = time.process_time()
        for _ in range(args.rounds):
            for text in texts:
                convert(text)
        cpu = time.process_time() - start
        rate = args.rounds * len(texts) / cpu
        failed = [label for label, html, ok in PROBES if not ok(convert(html))]
        if any(convert(text) != convert(text) for text in texts):
            failed.append("not deterministic")
        print(f"{name:20} {rate:14,.0f} {1e6 / rate:8.1f}  {', '.join(failed) or 'none'}")


if __name__ == "__main__":
    main()
