"""The GraphQL documents the Linear connector sends (each validated against Linear's published
schema in tests/test_connector_linear.py).

`ISSUE_FIELDS` is exactly the selection mappings/linear.yaml documents in its header.
Reference: https://linear.app/developers/graphql, https://linear.app/developers/pagination,
https://linear.app/developers/filtering
"""

from __future__ import annotations

ISSUE_FIELDS = """
    id identifier number title description url
    priority priorityLabel estimate
    createdAt updatedAt completedAt canceledAt startedAt archivedAt dueDate
    state { id name type }
    team { id key name }
    project { id name }
    cycle { id number name startsAt endsAt }
    parent { id identifier }
    assignee { id name displayName email }
    creator { id name displayName email }
    labels { nodes { id name } }
"""

# The update-time scan: ids and update times only (a few complexity points per page).
# `orderBy: updatedAt` sorts newest first; Linear offers no public ascending order (the
# `sort` argument is marked [INTERNAL] in the schema), so the connector reads the window
# newest-first and reverses it (see LinearConnector.fetch).
SCAN = """
query OpsHubIssueScan($first: Int!, $after: String, $filter: IssueFilter) {
  issues(first: $first, after: $after, filter: $filter, orderBy: updatedAt, includeArchived: true) {
    nodes { id updatedAt }
    pageInfo { hasNextPage endCursor }
  }
}
"""

# Full issues for a chunk of scanned ids (`filter: {id: {in: [...]}}`), and for `fetch_one`
# (a filter, not `issue(id:)`, whose non-null result turns a deleted issue into an error).
ISSUES_BY_ID = f"""
query OpsHubIssuesById($first: Int!, $filter: IssueFilter) {{
  issues(first: $first, filter: $filter, includeArchived: true) {{
    nodes {{ {ISSUE_FIELDS} }}
    pageInfo {{ hasNextPage endCursor }}
  }}
}}
"""

# Every id in scope, for the deletion sweep (archived issues included, as in `fetch`).
IDS = """
query OpsHubIssueIds($first: Int!, $after: String, $filter: IssueFilter) {
  issues(first: $first, after: $after, filter: $filter, includeArchived: true) {
    nodes { id }
    pageInfo { hasNextPage endCursor }
  }
}
"""

# One issue's history (`Issue.history`, an `IssueHistoryConnection` in its default `createdAt`
# order), a page at a time: each `IssueHistory` entry is one change; a
# status change has `fromState`/`toState` (WorkflowState: name and fixed `type`). Reached
# through `issues(filter: {id: {eq}})` rather than `issue(id:)`, as in `ISSUES_BY_ID`: a deleted
# issue then answers no node (an empty history) instead of an error.
# https://linear.app/developers/graphql (schema: IssueHistory), https://linear.app/developers/pagination
HISTORY = """
query OpsHubIssueHistory($filter: IssueFilter, $first: Int!, $after: String) {
  issues(first: 1, filter: $filter, includeArchived: true) {
    nodes {
      id
      history(first: $first, after: $after) {
        nodes {
          id createdAt
          fromState { id name type }
          toState { id name type }
        }
        pageInfo { hasNextPage endCursor }
      }
    }
  }
}
"""

ALL: dict[str, str] = {"scan": SCAN, "issues_by_id": ISSUES_BY_ID, "ids": IDS, "history": HISTORY}
