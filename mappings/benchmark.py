"""Normalisation speed: Jira issues mapped per second on one core, from parsed dicts.

    python -m mappings.benchmark [--issues 20000] [--rounds 5] [--profile] [--gc-threshold 700]

Issues are shaped like Jira Cloud REST v3 search results: an ADF description (heading,
paragraphs with marks, a nested list, a code block), assignee and reporter, labels,
components, a sprint, fix versions, issue links, story points and ~40 null custom fields.
Parsing JSON is not timed (the figure is for the mapping alone); see bench/sync_jira.py for
the end-to-end figure. The generated issues are frozen (`gc.freeze()`) before timing: a sync
holds one page, not 20,000 issues, and the collector re-scanning 20,000 live issues at
every full collection had made this figure 9.8k instead of 16.6k issues/s per core.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import pstats
import random
import time
from typing import Any

from mappings.engine import Mapper, load_spec

CATALOG = [
    {"id": "customfield_10016", "name": "Story Points", "custom": True},
    {"id": "customfield_10020", "name": "Sprint", "custom": True},
    {"id": "customfield_10014", "name": "Epic Link", "custom": True},
    {"id": "customfield_10015", "name": "Start date", "custom": True},
]


def _user(n: int) -> dict[str, Any]:
    return {
        "accountId": f"5b10ac8d82e05b22cc7d{n:04d}",
        "displayName": f"Person {n}",
        "emailAddress": f"person{n}@example.com",
        "active": True,
        "timeZone": "Europe/Berlin",
        "avatarUrls": {"48x48": f"https://avatars.example/{n}.png"},
    }


def _description(rng: random.Random) -> dict[str, Any]:
    para = {
        "type": "paragraph",
        "content": [
            {"type": "text", "text": "As a user I want "},
            {"type": "text", "text": "faster checkout", "marks": [{"type": "strong"}]},
            {"type": "text", "text": " so that see "},
            {"type": "text", "text": "the spec", "marks": [{"type": "link", "attrs": {"href": "https://x.example/s"}}]},
        ],
    }
    item = {"type": "listItem", "content": [{"type": "paragraph", "content": [{"type": "text", "text": "step"}]}]}
    return {
        "type": "doc",
        "version": 1,
        "content": [
            {"type": "heading", "attrs": {"level": 2}, "content": [{"type": "text", "text": "Context"}]},
            para,
            para,
            {
                "type": "bulletList",
                "content": [
                    item,
                    item,
                    {**item, "content": [*item["content"], {"type": "orderedList", "content": [item]}]},
                ],
            },
            {"type": "codeBlock", "attrs": {"language": "sql"}, "content": [{"type": "text", "text": "select 1;"}]},
        ][: rng.randint(2, 5)],
    }


def make_issue(n: int, rng: random.Random) -> dict[str, Any]:
    fields: dict[str, Any] = {f"customfield_{10100 + i}": None for i in range(40)}
    status = rng.choice([("To Do", "new"), ("In Progress", "indeterminate"), ("Done", "done"), ("Backlog", "new")])
    fields.update(
        {
            "summary": f"Issue number {n}",
            "issuetype": {"id": "10001", "name": rng.choice(["Story", "Task", "Bug", "Epic"]), "subtask": False},
            "status": {"name": status[0], "id": "1", "statusCategory": {"id": 2, "key": status[1], "name": "x"}},
            "priority": {"name": rng.choice(["Highest", "High", "Medium", "Low"]), "id": "3"},
            "resolution": {"name": "Done"} if status[1] == "done" else None,
            "project": {"id": "10000", "key": "PROJ", "name": "Project"},
            "assignee": _user(n % 50),
            "reporter": _user(n % 7),
            "creator": _user(n % 7),
            "labels": ["backend", f"team-{n % 5}"],
            "components": [{"id": "1", "name": "API"}],
            "created": "2025-01-02T10:11:12.345+0100",
            "updated": "2025-03-04T10:11:12.345+0100",
            "resolutiondate": "2025-03-04T10:11:12.345+0100" if status[1] == "done" else None,
            "duedate": "2025-04-01",
            "description": _description(rng),
            "parent": {"id": "9000", "key": "PROJ-1"} if n % 3 else None,
            "customfield_10016": float(rng.choice([1, 2, 3, 5, 8])),
            "customfield_10020": [
                {"id": 40, "name": "Sprint 40", "state": "closed", "startDate": "2025-01-01T00:00:00.000Z"},
                {
                    "id": 41,
                    "name": "Sprint 41",
                    "state": "active",
                    "startDate": "2025-01-15T00:00:00.000Z",
                    "endDate": "2025-01-29T00:00:00.000Z",
                },
            ],
            "fixVersions": [{"id": "100", "name": "1.0", "released": False, "releaseDate": "2025-05-01"}],
            "issuelinks": [
                {
                    "id": "1",
                    "type": {"name": "Blocks", "inward": "is blocked by", "outward": "blocks"},
                    "outwardIssue": {"id": str(n + 1), "key": f"PROJ-{n + 1}"},
                },
            ],
            "timeoriginalestimate": 7200,
        }
    )
    return {
        "id": str(10000 + n),
        "key": f"PROJ-{n}",
        "self": f"https://x.atlassian.net/rest/api/3/issue/{n}",
        "fields": fields,
    }


def _split(mapper: Mapper, issues: list[dict[str, Any]], rounds: int) -> None:
    """us/issue of each part of `Mapper.map` on its own (CPU time, median of `rounds`)."""
    from hub.schema import WorkItem
    from mappings.transforms.adf import to_markdown

    base = {"source": mapper.context.source, "tool": mapper.spec.tool}
    fill = getattr(mapper, "_fill", None)
    if fill is None:  # main before i13map (no generated function): the closures, as its map ran them

        def fill(issue: dict[str, Any], out: dict[str, Any]) -> None:
            for name, getter in mapper._fields:
                value = getter(issue)
                if value is not None:
                    out[name] = value

    outs = []
    for issue in issues:
        out = dict(base)
        fill(issue, out)
        outs.append(out)
    descriptions = [issue["fields"]["description"] for issue in issues]
    parts: list[tuple[str, Any, list[Any]]] = [
        ("field getters (Mapper._fill)", lambda issue: fill(issue, dict(base)), issues),
        ("  of which ADF -> Markdown", to_markdown, descriptions),
        ("WorkItem validation", WorkItem.model_validate, outs),
    ]
    for label, fn, data in parts:
        times = []
        for _ in range(rounds):
            cpu0 = time.process_time()
            for value in data:
                fn(value)
            times.append((time.process_time() - cpu0) / len(data) * 1e6)
        times.sort()
        print(f"{label:30s} {times[len(times) // 2]:6.1f} us/issue")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--issues", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument(
        "--split",
        action="store_true",
        help="also time the parts of a mapping alone: the field getters (transforms included), of "
        "which ADF -> Markdown, and the WorkItem validation (us/issue, median of the rounds)",
    )
    parser.add_argument(
        "--gc-threshold",
        type=int,
        default=700,
        help="the collector's generation-0 threshold (Python's default, %(default)s, is what a sync runs with)",
    )
    args = parser.parse_args()
    rng = random.Random(7)
    issues = [make_issue(n, rng) for n in range(args.issues)]
    # In a sync only the page being mapped is alive, not 20,000 parsed issues: frozen, the
    # collector does not scan them again and again, which a sync would not do either.
    gc.freeze()
    gc.set_threshold(args.gc_threshold, *gc.get_threshold()[1:])
    context = {"source": "bench-jira", "tool": "jira", "base_url": "https://x.atlassian.net", "fields": CATALOG}
    mapper = Mapper(load_spec("jira"), context)
    for issue in issues[:200]:  # warm up
        mapper.map(issue)
    profiler = cProfile.Profile() if args.profile else None
    if profiler:
        profiler.enable()
    rates = []
    for _ in range(args.rounds):
        cpu0 = time.process_time()
        for issue in issues:
            mapper.map(issue)
        rates.append(len(issues) / (time.process_time() - cpu0))
    if profiler:
        profiler.disable()
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)
    if args.split:
        _split(mapper, issues, args.rounds)
    rates.sort()
    median, best = rates[len(rates) // 2], rates[-1]
    print(
        f"mapped {len(issues)} Jira issues x {args.rounds} rounds (CPU time of this process, one core; "
        f"gc threshold {gc.get_threshold()[0]})"
    )
    print(f"normalisation: {median:,.0f} issues/s per core median ({1e6 / median:.1f} us/issue), best {best:,.0f}")


if __name__ == "__main__":
    main()
