"""Print the plans `bench/sync_jira.py --plans OUT.json` recorded, and compare two such runs.

    .venv/bin/python bench/plans_diff.py A.json [B.json]

For each statement kind: how many plans it had over the run and, for each, the commits
(page groups) it was seen between. With two files, the kinds whose set of plans differs are
printed with both sides' plans in full.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

_LITERAL = re.compile(r"'(?:[^']|'')*'")


def load(path: str) -> dict[str, dict[str, dict[str, int]]]:
    """The plans by statement kind, each plan's constants (the batch's ids, keys) masked, so
    that plans differ only by their shape: nodes, indexes, conditions."""
    raw: dict[str, dict[str, dict[str, int]]] = json.loads(Path(path).read_text())["plans"]
    plans: dict[str, dict[str, dict[str, int]]] = {}
    for kind, by_plan in raw.items():
        merged = plans.setdefault(kind, {})
        for plan, v in by_plan.items():
            shape = _LITERAL.sub("'?'", plan)
            seen = merged.get(shape)
            if seen is None:
                merged[shape] = dict(v)
            else:
                seen["first"], seen["last"] = min(seen["first"], v["first"]), max(seen["last"], v["last"])
                seen["n"] += v["n"]
    return plans


def summary(plans: dict[str, dict[str, dict[str, int]]]) -> None:
    for kind, by_plan in sorted(plans.items()):
        spans = sorted((v["first"], v["last"], v["n"]) for v in by_plan.values())
        cells = ", ".join(f"commits {a}-{b} ({n}x)" for a, b, n in spans)
        print(f"{len(by_plan)} plan(s)  {kind[:80]}\n      {cells}")


def main() -> None:
    a = load(sys.argv[1])
    summary(a)
    if len(sys.argv) < 3:
        return
    b = load(sys.argv[2])
    print("\n# differences (A = first file, B = second)")
    for kind in sorted(set(a) | set(b)):
        pa, pb = set(a.get(kind, {})), set(b.get(kind, {}))
        if pa == pb:
            continue
        print(f"\n## {kind}")
        for side, mine, theirs, plans in (("A", pa, pb, a), ("B", pb, pa, b)):
            for plan in sorted(mine - theirs):
                v = plans[kind][plan]
                print(f"-- only {side}, commits {v['first']}-{v['last']} ({v['n']}x):\n{plan}")


if __name__ == "__main__":
    main()
