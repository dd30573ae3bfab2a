"""The demo's product organisation: one coherent company, spread over seven tools.

Northwind sells a B2B ordering platform (web shop, mobile app, billing). Product managers keep
the roadmap in Productboard (storefront and mobile) and Aha! (billing and platform); every
roadmap feature is delivered through one Jira epic, whose stories live in Jira and whose
engineering work lives where each team tracks it: the web team in GitHub, the mobile team in
Linear, the platform team in a GitLab group, the billing team in a legacy Redmine project.
The same people work across tools (one email each), items carry RICE inputs, sprints,
cycles, milestones and releases, and about six months of history: shipped features, work in
progress, a few blocked, reopened, cancelled and past-due items.

`build_org(seed, now)` is a pure function of its arguments (no fakes, no I/O): the same seed
and anchor time give the same organisation, so tests can check its coherence and the demo
can be reproduced. hub/demo/fakes.py puts it into the fake tools.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Literal

Category = Literal["backlog", "todo", "in_progress", "done", "cancelled"]
Phase = Literal["shipped", "delivering", "planned", "blocked", "cancelled"]

HISTORY_DAYS = 182
"""How far back the organisation's history goes (about six months)."""
SPRINT_DAYS = 14


@dataclass(frozen=True)
class Person:
    name: str
    email: str
    login: str
    """GitHub login and GitLab username (those tools show no email)."""
    team: str


@dataclass
class Work:
    """One item in one tool, tool-neutral: the loader turns it into the tool's record."""

    ref: str
    """Unique within the organisation, e.g. `jira:SHOP/epic-3`; links name items by it."""
    tool: str
    container: str
    """Jira project key, GitHub repository, Linear team key, GitLab project path, Redmine
    project identifier, Productboard component or Aha! workspace prefix."""
    kind: str
    """initiative, epic, feature, subfeature, idea, story, task, bug or subtask."""
    title: str
    category: Category
    created: datetime
    updated: datetime
    reporter: Person
    assignee: Person | None = None
    estimate: float | None = None
    due: date | None = None
    parent: str | None = None
    """The ref of the parent in the same tool (story -> epic, sub-issue -> issue)."""
    implemented_by: list[str] = field(default_factory=list)
    """Refs of items in other tools that implement this one (roadmap -> epic, epic -> issues)."""
    blocked_by: list[str] = field(default_factory=list)
    duplicate_of: str | None = None
    labels: list[str] = field(default_factory=list)
    iteration: int | None = None
    """Sprint / cycle number (1 = the first two weeks of the history) for sprint-based tools."""
    release: str | None = None
    reopened: bool = False
    """Closed once and reopened before reaching its current state."""
    rice: dict[str, float] = field(default_factory=dict)
    """reach, impact, confidence (0-1) and effort, where the tool keeps them."""
    priority: int = 3
    """1 (highest) to 5 (lowest)."""


@dataclass
class Org:
    seed: int
    now: datetime
    start: datetime
    people: list[Person]
    items: list[Work]

    def by_ref(self) -> dict[str, Work]:
        return {item.ref: item for item in self.items}

    def of_tool(self, tool: str) -> list[Work]:
        return [item for item in self.items if item.tool == tool]

    def iteration_bounds(self, number: int) -> tuple[datetime, datetime]:
        begin = self.start + timedelta(days=SPRINT_DAYS * (number - 1))
        return begin, begin + timedelta(days=SPRINT_DAYS)

    def iteration_of(self, moment: datetime) -> int:
        return 1 + max(0, int((moment - self.start).total_seconds() // (SPRINT_DAYS * 86_400)))

    def releases(self) -> list[tuple[str, date]]:
        """Monthly releases `2026.M` over the history and the next two months: (name, date)."""
        out: list[tuple[str, date]] = []
        first = date(self.start.year, self.start.month, 1)
        for k in range(9):
            month = (first.month - 1 + k) % 12 + 1
            year = first.year + (first.month - 1 + k) // 12
            out.append((f"{year}.{month:02d}", date(year, month, 28)))
        return out

    def release_for(self, moment: datetime) -> str:
        for name, day in self.releases():
            if day >= moment.date():
                return name
        return self.releases()[-1][0]


_PEOPLE = [
    # name, team
    ("Maya Okafor", "product"),
    ("Tomás Herrera", "product"),
    ("Priya Raman", "product"),
    ("Jonas Weber", "product"),
    ("Aiko Tanaka", "web"),
    ("Lena Fischer", "web"),
    ("Samir Haddad", "web"),
    ("Chloé Martin", "web"),
    ("Diego Alvarez", "mobile"),
    ("Nora Lindqvist", "mobile"),
    ("Kwame Mensah", "mobile"),
    ("Ines Duarte", "platform"),
    ("Piotr Nowak", "platform"),
    ("Hannah Cohen", "platform"),
    ("Ravi Menon", "billing"),
    ("Sofia Rossi", "billing"),
]

# Roadmap features: (title, team delivering it, product tool, RICE reach).
_ROADMAP = [
    ("Saved carts for repeat orders", "web", "productboard"),
    ("One-click reorder from order history", "web", "productboard"),
    ("Apple Pay and Google Pay at checkout", "web", "productboard"),
    ("Bulk price list import", "web", "productboard"),
    ("Search relevance v2", "web", "productboard"),
    ("Mobile offline catalogue", "mobile", "productboard"),
    ("Push notifications for order status", "mobile", "productboard"),
    ("Barcode scanning in the mobile app", "mobile", "productboard"),
    ("Mobile approvals for purchase managers", "mobile", "productboard"),
    ("SAML single sign-on", "platform", "aha"),
    ("Audit log export", "platform", "aha"),
    ("Regional data residency (EU)", "platform", "aha"),
    ("Public API rate-limit dashboard", "platform", "aha"),
    ("Usage-based billing", "billing", "aha"),
    ("Invoice PDF redesign", "billing", "aha"),
    ("Multi-currency price lists", "billing", "aha"),
    ("Dunning emails for failed payments", "billing", "aha"),
    ("Customer spend analytics", "web", "productboard"),
]

_TEAM_TOOL = {"web": "github", "mobile": "linear", "platform": "gitlab", "billing": "redmine"}
_TEAM_CONTAINERS = {
    "web": ["northwind/storefront", "northwind/api"],
    "mobile": ["MOB"],
    "platform": ["northwind-platform/infra", "northwind-platform/identity"],
    "billing": ["billing"],
}
JIRA_PROJECTS = ("SHOP", "PLAT")
_JIRA_PROJECT_OF_TEAM = {"web": "SHOP", "mobile": "SHOP", "platform": "PLAT", "billing": "PLAT"}
AHA_PRODUCT = "NWP"
LINEAR_TEAM = "MOB"
PB_COMPONENTS = ("Storefront", "Mobile app", "Checkout")

_VERBS = ["Implement", "Add", "Wire up", "Design", "Test", "Document", "Migrate", "Instrument", "Harden", "Refactor"]
_PARTS = [
    "API endpoint",
    "data model",
    "UI flow",
    "feature flag",
    "migration script",
    "error handling",
    "analytics events",
    "rollout plan",
    "admin settings",
    "empty states",
    "permissions check",
    "webhook",
]
_BUGS = [
    "Cart total rounds wrong for 3-decimal currencies",
    "Login loops after password reset",
    "CSV export drops the last row",
    "Search returns archived products",
    "Order history paginates twice",
    "Timeout on large invoice download",
    "Push token not refreshed after reinstall",
    "Crash when the catalogue is empty",
    "Dark mode: unreadable price badges",
    "Rate limiter counts retries twice",
    "SSO metadata upload rejects valid XML",
    "VAT missing on credit notes",
    "Duplicate dunning email on retry",
    "Wrong locale on invoice dates",
    "Memory leak in the image resizer",
    "Flaky checkout end-to-end test",
]
_CHORES = [
    "Upgrade the web framework",
    "Rotate the staging certificates",
    "Remove the legacy coupon code path",
    "Speed up the CI pipeline",
    "Clean up unused feature flags",
    "Update the dependency lock files",
    "Archive old log buckets",
    "Tidy the on-call runbook",
]
_IDEAS = [
    "Let buyers split a cart between cost centres",
    "Quote requests for large orders",
    "Punch-out catalogue (OCI) support",
    "Scheduled recurring orders",
    "Approval chains with spend limits",
    "Slack notifications for approvals",
    "Self-service invoice corrections",
    "Customer-specific catalogues",
    "Export orders to the ERP nightly",
    "Two-factor login by authenticator app",
    "Show delivery ETA on the order page",
    "Wishlists shared within a company",
    "Budget alerts per department",
    "Price tiers by order volume",
    "Audit trail for price changes",
    "In-app chat with the account manager",
    "Returns portal",
    "Carbon footprint per order",
    "Offline mode for the web shop",
    "SCIM user provisioning",
    "Credit limit checks at checkout",
    "Product comparison table",
    "Reorder reminders by email",
    "Invoice consolidation per month",
]


def _lower_first(text: str) -> str:
    """'Saved carts' -> 'saved carts', but 'SAML sign-on' stays."""
    return text[0].lower() + text[1:] if text[1:2].islower() else text


def _email(name: str) -> str:
    first, last = name.split(" ", 1)
    ascii_ = str.maketrans("áéíóúçãõàèìòùäëïöüñ", "aeiouc" + "ao" + "aeiou" + "aeioun")
    return f"{first.lower().translate(ascii_)}.{last.lower().replace(' ', '').translate(ascii_)}@northwind.example"


def _people() -> list[Person]:
    out = []
    for name, team in _PEOPLE:
        email = _email(name)
        out.append(Person(name, email, email.split("@")[0].replace(".", "-"), team))
    return out


class _Builder:
    def __init__(self, seed: int, now: datetime) -> None:
        self.rng = random.Random(seed)
        self.now = now.replace(microsecond=0)
        self.start = self.now - timedelta(days=HISTORY_DAYS)
        self.people = _people()
        self.items: list[Work] = []
        self.counters: dict[str, int] = {}
        self.titles: set[str] = set()
        self.org = Org(seed, self.now, self.start, self.people, self.items)

    # ------------------------------------------------------------ helpers

    def ref(self, tool: str, container: str, what: str) -> str:
        key = f"{tool}:{container}/{what}"
        self.counters[key] = self.counters.get(key, 0) + 1
        return f"{key}-{self.counters[key]}"

    def team(self, team: str) -> list[Person]:
        return [p for p in self.people if p.team == team]

    def pick(self, team: str) -> Person:
        return self.rng.choice(self.team(team))

    def moment(self, earliest: datetime, latest: datetime) -> datetime:
        latest = min(latest, self.now - timedelta(minutes=30))
        if latest <= earliest:
            return latest
        span = (latest - earliest).total_seconds()
        return earliest + timedelta(seconds=int(self.rng.random() * span))

    def add(self, item: Work) -> Work:
        self.items.append(item)
        return item

    def lifecycle(self, phase: Phase, begin: datetime, end: datetime) -> tuple[Category, datetime, datetime]:
        """Category, created and updated of a delivery item of a feature in `phase` that runs
        from `begin` to `end` (end in the future while it is being delivered)."""
        created = self.moment(begin - timedelta(days=10), begin + (end - begin) * 0.6)
        if phase == "shipped":
            category: Category = "done" if self.rng.random() < 0.93 else "cancelled"
        elif phase == "cancelled":
            category = "cancelled" if self.rng.random() < 0.7 else "done"
        elif phase == "planned":
            category = "backlog" if self.rng.random() < 0.6 else "todo"
        else:  # delivering / blocked
            flow: list[Category] = ["done", "in_progress", "todo", "backlog"]
            category = self.rng.choices(flow, weights=[40, 30, 20, 10])[0]
        if category in ("done", "cancelled"):
            cycle = timedelta(days=min(45.0, self.rng.lognormvariate(1.9, 0.6)))
            updated = self.moment(created + cycle, min(end, self.now))
        elif category == "in_progress":
            updated = self.moment(max(created, self.now - timedelta(days=12)), self.now)
        else:
            updated = self.moment(created, created + timedelta(days=20))
        return category, created, max(updated, created + timedelta(hours=1))

    # ------------------------------------------------------------ the organisation

    def build(self) -> Org:
        counts: dict[Phase, int] = {"shipped": 6, "delivering": 7, "planned": 2, "blocked": 2, "cancelled": 1}
        phases = [phase for phase, count in counts.items() for _ in range(count)]
        self.rng.shuffle(phases)
        initiatives = self.aha_initiatives()
        for number, ((title, team, tool), phase) in enumerate(zip(_ROADMAP, phases, strict=True), start=1):
            self.feature(number, title, team, tool, phase, initiatives)
        self.unplanned_work()
        self.ideas()
        self.blockers()
        self.neglect()
        self.settle_times()
        return self.org

    def neglect(self) -> None:
        """What every real portfolio has and the Data quality page is there to find: work left
        in progress with no update for weeks, and a finished epic with a child still open."""
        rng = self.rng
        old_enough = self.now - timedelta(days=30)
        in_progress = [
            i
            for i in self.items
            if i.category == "in_progress" and i.kind in ("story", "task", "bug") and i.created < old_enough
        ]
        for item in rng.sample(in_progress, min(6, len(in_progress))):
            item.updated = self.moment(item.created + timedelta(days=1), self.now - timedelta(days=16))
        done_epics = [i for i in self.items if i.kind == "epic" and i.category == "done"]
        for epic in rng.sample(done_epics, min(2, len(done_epics))):
            children = [i for i in self.items if i.parent == epic.ref and i.category in ("done", "cancelled")]
            if children:
                child = rng.choice(children)
                child.category = "todo"  # left behind when the epic was closed
                child.updated = self.moment(child.created, min(epic.updated, self.now))

    def settle_times(self) -> None:
        """A child is created after its parent (a tool refuses a parent that does not exist yet),
        and every item is created before its last update, which is in the past."""
        by_ref: dict[str, Work] = {}
        latest = self.now - timedelta(minutes=5)  # nothing happens in the future
        for item in self.items:
            parent = by_ref.get(item.parent) if item.parent else None
            if parent is not None and item.created <= parent.created:
                item.created = parent.created + timedelta(minutes=10)
            item.created = min(item.created, latest - timedelta(minutes=10))
            item.updated = min(max(item.updated, item.created + timedelta(minutes=10)), latest)
            # Whole seconds: GitHub, Aha! and Redmine give no more.
            item.created, item.updated = item.created.replace(microsecond=0), item.updated.replace(microsecond=0)
            by_ref[item.ref] = item

    def aha_initiatives(self) -> dict[str, str]:
        refs = {}
        for team, title in (("platform", "Win enterprise accounts"), ("billing", "Cut involuntary churn")):
            created = self.start - timedelta(days=20)
            item = self.add(
                Work(
                    self.ref("aha", AHA_PRODUCT, "initiative"),
                    "aha",
                    AHA_PRODUCT,
                    "initiative",
                    title,
                    "in_progress",
                    created,
                    self.moment(self.now - timedelta(days=20), self.now),
                    self.pick("product"),
                    self.pick("product"),
                )
            )
            refs[team] = item.ref
        return refs

    def feature(self, number: int, title: str, team: str, tool: str, phase: Phase, initiatives: dict[str, str]) -> None:
        rng = self.rng
        # When the feature's delivery ran: shipped ones in the older months, planned ones later.
        if phase == "shipped":
            begin = self.start + timedelta(days=rng.randint(0, 100))
            end = begin + timedelta(days=rng.randint(30, 70))
        elif phase == "planned":
            begin = self.now + timedelta(days=rng.randint(5, 40))
            end = begin + timedelta(days=rng.randint(30, 60))
        else:
            begin = self.now - timedelta(days=rng.randint(25, 110))
            end = self.now + timedelta(days=rng.randint(10, 60))
        pm = self.pick("product")
        roadmap_category: Category = {
            "shipped": "done",
            "delivering": "in_progress",
            "blocked": "in_progress",
            "planned": "todo",
            "cancelled": "cancelled",
        }[phase]  # type: ignore[assignment]
        container = AHA_PRODUCT if tool == "aha" else PB_COMPONENTS[0 if team == "web" else 1]
        if title.startswith(("Saved carts", "Apple Pay")):
            container = PB_COMPONENTS[2]  # nested under Storefront
        roadmap_created = min(begin, self.now) - timedelta(days=rng.randint(10, 40))
        roadmap_updated = self.moment(min(end, self.now) - timedelta(days=5), min(end, self.now))
        reach = float(rng.choice([200, 500, 1200, 3000, 8000]))
        rice = {"reach": reach, "impact": rng.choice([0.5, 1.0, 2.0, 3.0]), "confidence": rng.choice([0.5, 0.8, 1.0])}
        rice["effort"] = float(rng.choice([1, 2, 3, 5, 8]))
        if number % 5 == 0:
            del rice["confidence"]  # missing inputs exist in real portfolios
        roadmap = self.add(
            Work(
                self.ref(tool, container, "feature"),
                tool,
                container,
                "feature",
                title,
                roadmap_category,
                roadmap_created,
                max(roadmap_updated, roadmap_created + timedelta(hours=2)),
                pm,
                pm,
                due=end.date() if phase != "cancelled" else None,
                parent=initiatives.get(team) if tool == "aha" else None,
                release=self.org.release_for(end),
                rice=rice,
                priority=rng.randint(1, 4),
            )
        )
        subfeature = None
        if tool == "productboard" and rng.random() < 0.5:
            sub_cat, sub_created, sub_updated = self.lifecycle(phase, begin, end)
            subfeature = self.add(
                Work(
                    self.ref(tool, container, "subfeature"),
                    tool,
                    container,
                    "subfeature",
                    f"{title}: {rng.choice(['admin settings', 'reporting', 'rollout to all accounts'])}",
                    sub_cat if sub_cat != "backlog" else "todo",
                    sub_created,
                    sub_updated,
                    pm,
                    pm,
                    parent=roadmap.ref,
                )
            )
        # The Jira epic that delivers it.
        project = _JIRA_PROJECT_OF_TEAM[team]
        epic_cat: Category = roadmap_category if roadmap_category != "todo" else "backlog"
        epic = self.add(
            Work(
                self.ref("jira", project, "epic"),
                "jira",
                project,
                "epic",
                title,
                epic_cat,
                roadmap_created + timedelta(days=rng.randint(1, 8)),
                max(roadmap_updated, roadmap_created + timedelta(days=9)),
                pm,
                self.pick(team),
                due=end.date() if phase != "cancelled" else None,
                labels=[team],
                rice=dict(rice),
                release=roadmap.release,
                priority=roadmap.priority,
            )
        )
        roadmap.implemented_by.append(epic.ref)
        # Stories in Jira under the epic, and engineering issues in the team's tool.
        stories = [
            self.delivery(
                "jira", project, phase, begin, end, team, parent=epic.ref, kind=rng.choice(["story"] * 3 + ["task"])
            )
            for _ in range(rng.randint(4, 8))
        ]
        if subfeature is not None:
            # Productboard connects a subfeature to the Jira issue that delivers it.
            subfeature.implemented_by.append(rng.choice(stories).ref)
        if phase == "blocked":
            # Work started and then waited on another team (blockers() links the blocker).
            waiting = stories[0]
            waiting.category = "in_progress"
            waiting.updated = self.moment(max(waiting.created, self.now - timedelta(days=12)), self.now)
        tool_of_team = _TEAM_TOOL[team]
        for k in range(rng.randint(8, 16)):
            container_of_team = rng.choice(_TEAM_CONTAINERS[team])
            issue = self.delivery(tool_of_team, container_of_team, phase, begin, end, team, title_hint=title)
            epic.implemented_by.append(issue.ref)
            if tool_of_team == "linear" and k and rng.random() < 0.3:
                # A sub-issue under the previous issue (Linear's parent/child).
                sub = self.delivery(
                    tool_of_team, container_of_team, phase, begin, end, team, parent=issue.ref, kind="subtask"
                )
                sub.title = f"{issue.title}: follow-up"
        if phase == "blocked":
            epic.labels.append("blocked")

    def delivery(
        self,
        tool: str,
        container: str,
        phase: Phase,
        begin: datetime,
        end: datetime,
        team: str,
        *,
        parent: str | None = None,
        kind: str | None = None,
        title_hint: str | None = None,
    ) -> Work:
        rng = self.rng
        category, created, updated = self.lifecycle(phase, begin, end)
        kind = kind or rng.choices(["story", "task", "bug"], weights=[40, 45, 15])[0]
        subject = title_hint or (self.parent_title(parent) if parent else None)
        for _ in range(10):  # a few draws for a title the organisation does not have yet
            if kind == "bug":
                bug = rng.choice(_BUGS)
                title = f"{subject}: {_lower_first(bug)}" if subject else bug
            else:
                title = f"{rng.choice(_VERBS)} {rng.choice(_PARTS)}"
                title = f"{title} for {_lower_first(subject)}" if subject else title
            if title not in self.titles:
                break
        self.titles.add(title)
        assignee = self.pick(team) if category != "backlog" or rng.random() < 0.3 else None
        due = None
        if rng.random() < 0.25:
            due = (updated + timedelta(days=rng.randint(-5, 20))).date()
        item = self.add(
            Work(
                self.ref(tool, container, kind),
                tool,
                container,
                kind,
                title,
                category,
                created,
                updated,
                self.pick(rng.choice([team, "product"])),
                assignee,
                estimate=float(rng.choice([1, 2, 3, 5, 8, 13])) if rng.random() < 0.8 else None,
                due=due,
                parent=parent,
                labels=[rng.choice(["backend", "frontend", "ux", "performance", "security"])],
                iteration=self.org.iteration_of(updated) if category != "backlog" else None,
                release=self.org.release_for(updated),
                reopened=category in ("done", "in_progress") and rng.random() < 0.08,
                priority=rng.randint(1, 5),
            )
        )
        return item

    def parent_title(self, ref: str) -> str:
        for item in reversed(self.items):
            if item.ref == ref:
                return item.title
        return ref

    def unplanned_work(self) -> None:
        """Bugs and chores no roadmap item covers (the rollup's uncovered delivery work)."""
        rng = self.rng
        for team, tool in _TEAM_TOOL.items():
            for _ in range(rng.randint(25, 40)):
                container = rng.choice(_TEAM_CONTAINERS[team])
                begin = self.moment(self.start, self.now - timedelta(days=3))
                phase: Phase = "shipped" if begin < self.now - timedelta(days=40) else "delivering"
                item = self.delivery(
                    tool,
                    container,
                    phase,
                    begin,
                    begin + timedelta(days=30),
                    team,
                    kind=rng.choice(["bug", "bug", "task"]),
                )
                if item.kind == "task":
                    item.title = rng.choice(_CHORES)
        for project in JIRA_PROJECTS:
            team = "web" if project == "SHOP" else "platform"
            for _ in range(rng.randint(12, 20)):
                begin = self.moment(self.start, self.now - timedelta(days=3))
                phase = "shipped" if begin < self.now - timedelta(days=40) else "delivering"
                self.delivery("jira", project, phase, begin, begin + timedelta(days=30), team, kind="bug")

    def ideas(self) -> None:
        """Aha! ideas: some promoted to a roadmap feature, some merged into an earlier idea."""
        rng = self.rng
        aha_features = [i for i in self.items if i.tool == "aha" and i.kind == "feature"]
        earlier: list[Work] = []
        for title in _IDEAS:
            created = self.moment(self.start - timedelta(days=60), self.now - timedelta(days=1))
            choices: list[Category] = ["backlog", "todo", "done", "cancelled"]
            category = rng.choices(choices, weights=[50, 25, 15, 10])[0]
            idea = self.add(
                Work(
                    self.ref("aha", AHA_PRODUCT, "idea"),
                    "aha",
                    AHA_PRODUCT,
                    "idea",
                    title,
                    category,
                    created,
                    self.moment(created + timedelta(hours=3), created + timedelta(days=30)),
                    self.pick(rng.choice(["product", "web", "billing"])),
                    self.pick("product") if rng.random() < 0.6 else None,
                    rice={"reach": float(rng.choice([50, 100, 400, 1500])), "effort": float(rng.randint(1, 8))},
                )
            )
            if earlier and rng.random() < 0.15:
                idea.duplicate_of = rng.choice(earlier).ref
                idea.category = "cancelled"
            elif aha_features and rng.random() < 0.25:
                idea.implemented_by.append(rng.choice(aha_features).ref)
                idea.category = "done"
            earlier.append(idea)

    def blockers(self) -> None:
        """Open Jira stories blocked by another open Jira issue: in each blocked feature's epic
        (a dependency on the other project), and a few more here and there."""
        rng = self.rng
        open_jira = [
            i for i in self.items if i.tool == "jira" and i.kind != "epic" and i.category in ("todo", "in_progress")
        ]
        for epic in (i for i in self.items if i.kind == "epic" and "blocked" in i.labels):
            stories = [i for i in open_jira if i.parent == epic.ref]
            others = [i for i in open_jira if i.container != epic.container]
            if stories and others:
                rng.choice(stories).blocked_by.append(rng.choice(others).ref)
        rng.shuffle(open_jira)
        for blocked, blocker in zip(open_jira[0:12:2], open_jira[1:12:2], strict=False):
            if blocked.container == blocker.container and not blocked.blocked_by:
                blocked.blocked_by.append(blocker.ref)


def build_org(seed: int = 1, now: datetime | None = None) -> Org:
    """The organisation for `seed`, its history ending at `now` (aware; default: the current time)."""
    if now is None:
        from hub.store.items import utcnow

        now = utcnow()
    if now.tzinfo is None:
        raise ValueError("build_org needs an aware datetime for `now`")
    return _Builder(seed, now).build()
