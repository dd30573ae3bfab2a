"""Cross-tool link references: turn what one tool says about another tool's item (a Jira key
on a Productboard feature, `ENG-42` on an Aha! feature, a GitHub issue URL in a Jira remote
link) into a reference the store can match against items' keys, whichever arrives first.

A reference is `(tool, key)` in the form the target tool's mapping stores in `WorkItem.key`:
Jira `PROJ-12`, Linear `ENG-42`, GitHub `owner/repo#7`, GitLab `group/project#7`, Redmine
`#7`. Keys are matched case-insensitively where the tool treats them so (Jira, Linear).
"""

from __future__ import annotations

import re
from typing import NamedTuple

from hub.schema import LinkType


class Ref(NamedTuple):
    tool: str
    key: str


INVERSE: dict[LinkType, LinkType] = {
    LinkType.blocks: LinkType.blocked_by,
    LinkType.blocked_by: LinkType.blocks,
    LinkType.relates: LinkType.relates,
    LinkType.duplicates: LinkType.duplicated_by,
    LinkType.duplicated_by: LinkType.duplicates,
    LinkType.implements: LinkType.implemented_by,
    LinkType.implemented_by: LinkType.implements,
}

# Tools whose keys are upper-case project/team prefixes plus a number.
_UPPER_KEY_TOOLS = ("jira", "linear")
_JIRA_KEY = r"[A-Za-z][A-Za-z0-9_]*-\d+"

# URL shapes, most specific first. Each yields (tool, key).
_URL_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    # Jira Cloud/Server: https://acme.atlassian.net/browse/PROJ-12 (also /jira/software/.../issues/PROJ-12)
    (re.compile(rf"^https?://[^/]+(?:/[^?#]*)?/browse/(?P<key>{_JIRA_KEY})(?:[/?#]|$)"), "jira"),
    (re.compile(rf"^https?://[^/]*atlassian\.net/.*?/issues/(?P<key>{_JIRA_KEY})(?:[/?#]|$)"), "jira"),
    (re.compile(rf"^https?://[^/]*jira[^/]*/.*?/issues/(?P<key>{_JIRA_KEY})(?:[/?#]|$)"), "jira"),
    # Linear: https://linear.app/acme/issue/ENG-42/some-title
    (re.compile(rf"^https?://linear\.app/[^/]+/issue/(?P<key>{_JIRA_KEY})(?:[/?#]|$)"), "linear"),
    # GitHub: https://github.com/owner/repo/issues/7 (and the API form api.github.com/repos/owner/repo/issues/7)
    (re.compile(r"^https?://(?:www\.)?github\.com/(?P<repo>[^/]+/[^/]+)/issues/(?P<num>\d+)(?:[/?#]|$)"), "github"),
    (re.compile(r"^https?://api\.github\.com/repos/(?P<repo>[^/]+/[^/]+)/issues/(?P<num>\d+)(?:[/?#]|$)"), "github"),
    # GitLab: https://gitlab.com/group/sub/project/-/issues/7
    (re.compile(r"^https?://[^/]*gitlab[^/]*/(?P<repo>.+?)/-/issues/(?P<num>\d+)(?:[/?#]|$)"), "gitlab"),
    # Redmine: https://redmine.example/issues/7
    (re.compile(r"^https?://[^/]*redmine[^/]*/issues/(?P<num>\d+)(?:[/?#.]|$)"), "redmine"),
]

# URNs some connectors emit when the tool gives a key but no site: `jira:PROJ-12`.
_URN = re.compile(r"^(?P<tool>jira|linear|github|gitlab|redmine):(?P<key>.+)$")


def normalise_key(tool: str, key: str) -> str:
    """The form keys are compared in (upper-case for Jira and Linear)."""
    key = key.strip()
    return key.upper() if tool in _UPPER_KEY_TOOLS else key


def ref_from_url(url: str) -> Ref | None:
    """The (tool, key) a URL or URN names, if it is one of a known tool's item URLs."""
    url = url.strip()
    urn = _URN.match(url)
    if urn:
        tool = urn.group("tool")
        return Ref(tool, normalise_key(tool, urn.group("key")))
    for pattern, tool in _URL_PATTERNS:
        match = pattern.match(url)
        if not match:
            continue
        groups = match.groupdict()
        if "key" in groups:
            return Ref(tool, normalise_key(tool, groups["key"]))
        if tool == "redmine":
            return Ref(tool, f"#{groups['num']}")
        return Ref(tool, f"{groups['repo']}#{groups['num']}")
    return None
