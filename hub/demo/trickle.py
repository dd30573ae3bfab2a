"""Keep the demo moving: every few seconds, move one open item a step forward in its fake tool
(to do -> in progress -> done) and POST the tool's signed webhook about it to the hub, the way
the tool would. The hub verifies the signature, stores the delivery and applies it, so the
item's status, history and the flow charts change while you look.

Redmine sends no webhooks (its items change only on a sync), so it is left out.
"""

from __future__ import annotations

import logging
import random
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from hub.demo.environment import SOURCE_NAMES, DemoEnvironment

log = logging.getLogger("opshub.demo")

WEBHOOK_TOOLS = ("jira", "github", "gitlab", "linear", "productboard", "aha")
_NEXT = {"backlog": "in_progress", "todo": "in_progress", "in_progress": "done"}


@dataclass(frozen=True)
class Move:
    tool: str
    source: str
    native_id: str
    key: str
    title: str
    before: str
    after: str
    status: int
    """The hub's HTTP answer to the webhook (202 when accepted)."""

    def describe(self) -> str:
        return f"{self.tool} {self.key} ({self.title[:50]}): {self.before} -> {self.after}, webhook {self.status}"


class WebhookTrickle:
    """Moves items in the fakes and tells the hub by webhook, one `step` at a time."""

    def __init__(
        self, env: DemoEnvironment, hub_url: str, *, seed: int = 1, client: httpx.Client | None = None
    ) -> None:
        self.env = env
        self.hub_url = hub_url.rstrip("/")
        self.rng = random.Random(seed)
        self.client = client or httpx.Client(timeout=10.0)
        self.moves = 0
        # (tool, org ref) -> category, for the items that can still move.
        self.open: dict[str, list[tuple[str, str]]] = {tool: [] for tool in WEBHOOK_TOOLS}
        self.category: dict[str, str] = {}
        for item in env.fakes.org.items:
            if item.tool in self.open and item.category in _NEXT and item.kind not in ("initiative", "idea"):
                self.open[item.tool].append((item.ref, item.title))
                self.category[item.ref] = item.category

    def close(self) -> None:
        self.client.close()

    def step(self) -> Move | None:
        """Move one item of a tool chosen at random; None when nothing is left to move."""
        tools = [tool for tool in WEBHOOK_TOOLS if self.open[tool]]
        if not tools:
            return None
        tool = self.rng.choice(tools)
        ref, title = self.rng.choice(self.open[tool])
        before = self.category[ref]
        after = _NEXT[before]
        placed = self.env.fakes.placed[ref]
        fake = self.env.fakes.fakes[tool]
        fake.set_clock(datetime.now(UTC))
        getattr(self, f"_move_{tool}")(fake, placed.native_id, after)
        if after == "done":
            self.open[tool].remove((ref, title))
        self.category[ref] = after
        headers, body = fake.webhook("upsert", placed.native_id, secret=self.env.webhook_secret)
        source = SOURCE_NAMES[tool]
        response = self.client.post(f"{self.hub_url}/webhooks/{source}", content=body, headers=headers)
        self.moves += 1
        return Move(tool, source, placed.native_id, placed.key, title, before, after, response.status_code)

    def run(self, stop: threading.Event, interval: float, *, echo: Any = None) -> None:
        """Step every `interval` seconds until `stop` is set (a failed step is logged, not fatal)."""
        while not stop.wait(interval):
            try:
                move = self.step()
            except Exception as exc:  # noqa: BLE001 - the demo keeps serving; the next step may work
                log.warning("demo webhook trickle: %s", exc)
                continue
            if move is None:
                return
            if echo is not None:
                echo(move)

    # ------------------------------------------------------------ one step per tool

    @staticmethod
    def _move_jira(fake: Any, native_id: str, after: str) -> None:
        api = f"{fake.base_url}/rest/api/3"
        if after == "in_progress":
            status = {"id": "3", "name": "In Progress", "key": "indeterminate", "cat": 4, "cat_name": "In Progress"}
        else:
            status = {"id": "10003", "name": "Done", "key": "done", "cat": 3, "cat_name": "Done"}
        changes: dict[str, Any] = {
            "status": {
                "self": f"{api}/status/{status['id']}",
                "id": status["id"],
                "name": status["name"],
                "statusCategory": {"id": status["cat"], "key": status["key"], "name": status["cat_name"]},
            }
        }
        if after == "done":
            changes["resolution"] = {"self": f"{api}/resolution/10000", "id": "10000", "name": "Done"}
            changes["resolutiondate"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000+0000")
        fake.edit(native_id, **changes)

    @staticmethod
    def _move_github(fake: Any, native_id: str, after: str) -> None:
        record = fake.record(native_id)
        labels = [label for label in record["labels"] if label["name"] not in ("backlog", "in progress")]
        if after == "in_progress":
            labels.append({"id": 104, "name": "in progress", "color": "fbca04", "default": False, "description": None})
            fake.edit(native_id, labels=labels)
        else:
            now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            fake.edit(native_id, labels=labels, state="closed", state_reason="completed", closed_at=now)

    @staticmethod
    def _move_gitlab(fake: Any, native_id: str, after: str) -> None:
        record = fake.record(native_id)
        labels = [name for name in record["labels"] if not name.startswith("workflow::")]
        if after == "in_progress":
            fake.edit(native_id, labels=[*labels, "workflow::in progress"])
        else:
            now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
            fake.edit(native_id, labels=labels, state="closed", closed_at=now)

    @staticmethod
    def _move_linear(fake: Any, native_id: str, after: str) -> None:
        record = fake.record(native_id)
        team = record["team"]["key"]
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        if after == "in_progress":
            fake.edit(native_id, state=fake.state(team, "In Progress"), startedAt=now)
        else:
            fake.edit(native_id, state=fake.state(team, "Done"), completedAt=now)

    @staticmethod
    def _move_productboard(fake: Any, native_id: str, after: str) -> None:
        name = "In progress" if after == "in_progress" else "Released"
        status = next(s for s in fake.statuses if s["name"] == name)
        fake.edit(native_id, status={"id": status["id"], "name": name})

    @staticmethod
    def _move_aha(fake: Any, native_id: str, after: str) -> None:
        fake.edit(native_id, status="In development" if after == "in_progress" else "Shipped")
