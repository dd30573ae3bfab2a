"""The mapping engine: spec loading, override merging, check errors, mapping errors, helpers."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from mappings import engine
from mappings.engine import Mapper, check, check_all, load_spec, mapper_for, merge_overrides, preview
from mappings.errors import MappingError, SpecError
from mappings.spec import MappingSpec, parse_spec

CONTEXT = {
    "source": "acme-jira",
    "tool": "jira",
    "base_url": "https://acme.atlassian.net/",
    "fields": [
        {"id": "customfield_10016", "name": "Story Points"},
        {"id": "customfield_10028", "name": "Story point estimate"},
        {"id": "customfield_10200", "name": "Team"},
        {"id": "customfield_10300", "name": "Effort days"},
    ],
}


def issue(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "summary": "S",
        "issuetype": {"name": "Story"},
        "status": {"name": "To Do", "statusCategory": {"key": "new"}},
        "updated": "2025-01-01T00:00:00.000+0000",
    }
    base.update(fields)
    return {"id": "1", "key": "A-1", "fields": base}


def test_shipped_specs_are_clean() -> None:
    assert check_all() == []
    assert check(load_spec("jira")) == []


def test_load_spec_returns_independent_copies() -> None:
    first = load_spec("jira")
    first.tables["status"]["Mine"] = "done"
    assert "Mine" not in load_spec("jira").tables["status"]


def test_unknown_tool() -> None:
    with pytest.raises(SpecError, match="no mapping spec for tool 'nope'"):
        load_spec("nope")


def test_merge_tables_adds_and_replaces_entries() -> None:
    spec = merge_overrides(
        load_spec("jira"),
        {
            "status": {"In Review": "in_progress", "Backlog": "todo"},
            "priority": {"P0": "urgent"},
            "kind": {"Initiative": "initiative"},
        },
    )
    assert spec.tables["status"]["In Review"] == "in_progress"
    assert spec.tables["status"]["Backlog"] == "todo"
    assert spec.tables["status"]["Icebox"] == "backlog"  # untouched entries stay
    mapper = Mapper(spec, CONTEXT)
    item = mapper.map(issue(status={"name": "Backlog", "statusCategory": {"key": "new"}}, priority={"name": "P0"}))
    assert (item.status.category.value, item.priority.level.value) == ("todo", "urgent")


def test_table_lookup_is_case_insensitive() -> None:
    mapper = Mapper(merge_overrides(load_spec("jira"), {"status": {"Ready For QA": "in_progress"}}), CONTEXT)
    item = mapper.map(issue(status={"name": "ready for qa", "statusCategory": {"key": "new"}}))
    assert item.status.category.value == "in_progress"


def test_estimate_field_override_by_display_name_and_unit() -> None:
    raw = issue(customfield_10016=5, customfield_10028=2, customfield_10300=3)
    assert Mapper(load_spec("jira"), CONTEXT).map(raw).estimate.value == 5  # type: ignore[union-attr]
    spec = merge_overrides(load_spec("jira"), {"estimate": {"field": "Story point estimate"}})
    assert Mapper(spec, CONTEXT).map(raw).estimate.value == 2  # type: ignore[union-attr]
    spec = merge_overrides(load_spec("jira"), {"estimate": {"field": "Effort days", "unit": "days"}})
    estimate = Mapper(spec, CONTEXT).map(raw).estimate
    assert estimate is not None
    assert (estimate.value, estimate.unit.value) == (3, "days")
    spec = merge_overrides(load_spec("jira"), {"estimate": "customfield_10028"})  # a field id works too
    assert Mapper(spec, CONTEXT).map(raw).estimate.value == 2  # type: ignore[union-attr]


def test_custom_fields_by_friendly_name() -> None:
    spec = merge_overrides(
        load_spec("jira"),
        {
            "custom": {
                "team": "Team",
                "env": {"path": "fields.environment"},
                "owner": {"field": "Team", "transform": "string"},
            }
        },
    )
    item = Mapper(spec, CONTEXT).map(issue(customfield_10200={"id": "1", "value": "Growth"}, environment="prod"))
    assert item.custom == {"team": "Growth", "env": "prod", "owner": "Growth"}


def test_fields_override_replaces_a_rule() -> None:
    spec = merge_overrides(load_spec("jira"), {"fields": {"title": {"path": "key"}}})
    assert Mapper(spec, CONTEXT).map(issue()).title == "A-1"


def test_merge_does_not_touch_the_input_spec() -> None:
    spec = load_spec("jira")
    before = copy.deepcopy(spec.model_dump())
    merge_overrides(
        spec,
        {"status": {"X": "done"}, "custom": {"team": "Team"}, "estimate": {"field": "Effort days", "unit": "days"}},
    )
    assert spec.model_dump() == before


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (
            {"status": {"In Review": "in-progress"}},
            "mapping.status.\"In Review\": 'in-progress' is not a valid status.category",
        ),
        ({"priority": {"P0": "critical"}}, "mapping.priority.P0: 'critical' is not a valid priority.level"),
        ({"kind": {"Initiative": "theme"}}, "mapping.kind.Initiative: 'theme' is not a valid kind"),
        ({"status": "done"}, "mapping.status: must be a table of name = value"),
        ({"estimate": {"fields": "Story Points"}}, "mapping.estimate.fields: unknown key (allowed: field, unit)"),
        ({"estimate": {"field": "X", "unit": "weeks"}}, "mapping.estimate.unit: 'weeks' is not a valid unit"),
        ({"sprint": {"field": "X", "unit": "days"}}, "mapping.sprint.unit: unknown key (allowed: field)"),
        ({"estimate": {"field": 5}}, "mapping.estimate.field: must be a display name"),
        ({"statuses": {"A": "done"}}, "mapping.statuses: unknown override (known: "),
        ({"fields": {"titel": "fields.summary"}}, "mapping.fields.titel: unknown WorkItem field"),
        (
            {"fields": {"title": {"path": "x", "transfrom": "string"}}},
            "mapping.fields.title.transfrom: Extra inputs are not permitted",
        ),
        (
            {"fields": {"description": {"path": "fields.description", "transform": "html_to_md"}}},
            "fields.description.transform: unknown transform 'html_to_md'",
        ),
        (
            {"fields": {"links": {"path": "fields.issuelinks", "transform": "jira_links", "args": {"typez": {}}}}},
            "fields.links.args: got an unexpected keyword argument 'typez'",
        ),
        (
            {"fields": {"kind": {"path": "fields.issuetype.name", "table": "kinds"}}},
            "fields.kind.table: unknown table 'kinds'",
        ),
        (
            {"fields": {"kind": {"path": "fields.issuetype.name", "default": "thing"}}},
            "fields.kind.default: 'thing' is not a valid kind",
        ),
        (
            {"fields": {"status": {"object": {"category": {"const": "todo"}, "label": "fields.status.name"}}}},
            "fields.status.object.label: status has no field 'label'",
        ),
        ({"custom": {"team": 5}}, "mapping.custom.team: must be a display name or a rule table"),
        ({"params": {"nope": 1}}, "mapping.params.nope: unknown parameter"),
    ],
)
def test_check_reports_precise_errors(overrides: dict[str, Any], expected: str) -> None:
    errors = check(load_spec("jira"), overrides)
    assert any(expected in e for e in errors), errors
    with pytest.raises(SpecError) as caught:
        merge_overrides(load_spec("jira"), overrides)
    assert any(expected in e for e in caught.value.errors)


def test_check_reports_every_problem_at_once() -> None:
    errors = check(load_spec("jira"), {"status": {"A": "x", "B": "y"}, "priority": {"P0": "z"}, "oops": 1})
    assert len(errors) == 4


def test_check_against_the_field_catalog() -> None:
    errors = check(
        load_spec("jira"),
        {"estimate": {"field": "Story Pts"}, "custom": {"team": "Squad"}},
        field_catalog=CONTEXT["fields"],
    )
    assert errors == [
        "mapping.estimate.field: no custom field named 'Story Pts' in the field catalog",
        "mapping.custom.team: no custom field named 'Squad' in the field catalog",
    ]
    assert check(load_spec("jira"), {"estimate": {"field": "story points"}}, field_catalog=CONTEXT["fields"]) == []


def test_check_all_prefixes_source_and_key() -> None:
    errors = check_all(
        {"acme-jira": ("jira", {"status": {"In Review": "review"}}), "bad": ("jiraa", {}), "ok": ("jira", None)}
    )
    assert errors[0].startswith(
        "sources.acme-jira.mapping.status.\"In Review\": 'review' is not a valid status.category"
    )
    assert errors[1].startswith("sources.bad: no mapping spec for tool 'jiraa'")
    assert len(errors) == 2


def test_spec_validation_errors_have_paths() -> None:
    data = load_spec("jira").model_dump(exclude_unset=True)
    data["fields"]["title"] = {"path": "fields.summary", "const": "x"}
    with pytest.raises(SpecError, match=r"fields\.title: Value error, a rule takes one of path"):
        parse_spec(data, "jira.yaml")
    data["fields"]["title"] = {}
    with pytest.raises(SpecError, match="a rule needs path"):
        parse_spec(data, "jira.yaml")


def test_spec_check_finds_missing_required_and_bad_paths() -> None:
    spec = load_spec("jira")
    del spec.fields["updated_at"]
    spec.fields["key"].path = "fields..key"
    errors = check(spec)
    assert "fields.updated_at: missing (every WorkItem needs it)" in errors
    assert "fields.key.path: malformed path 'fields..key'" in errors
    with pytest.raises(SpecError):
        Mapper(spec, CONTEXT)


def test_mapping_errors_name_the_record() -> None:
    mapper = Mapper(load_spec("jira"), CONTEXT)
    with pytest.raises(MappingError) as caught:
        mapper.map({"key": "A-1", "fields": {"updated": "2025-01-01T00:00:00Z"}})
    assert caught.value.native_id is None
    assert "no native id" in str(caught.value)
    with pytest.raises(MappingError, match=r"^1: no update time"):
        mapper.map({"id": "1", "fields": {}})
    with pytest.raises(MappingError, match=r"^1: updated_at: .*"):
        mapper.map(issue(updated="not a date"))
    with pytest.raises(MappingError, match=r"1: .*estimate\.value.*greater than or equal to 0"):
        mapper.map(issue(customfield_10016=-3))
    with pytest.raises(MappingError, match="must be a JSON object"):
        mapper.map([])  # type: ignore[arg-type]


def test_odd_shapes_are_missing_values_not_errors() -> None:
    mapper = Mapper(load_spec("jira"), CONTEXT)
    raw = issue(
        priority="High",
        project="nope",
        assignee={"displayName": "No Id"},
        labels=None,
        issuelinks=[None, {"type": None}, {"outwardIssue": {"key": "B-2"}}],
        fixVersions={"id": "1"},
        customfield_10016="five",
    )
    raw["fields"]["status"] = {"statusCategory": "new"}
    item = mapper.map(raw)
    assert item.priority.level.value == "none"
    assert item.container is None
    assert item.assignees == []
    assert item.links == []
    assert item.release is None
    assert item.estimate is None
    assert item.status.category.value == "todo"


def test_fields_null_and_no_catalog() -> None:
    item = Mapper(load_spec("jira"), {"source": "s", "tool": "jira"}).map(
        {"id": 5, "key": "K-5", "fields": {"updated": 1700000000000}}
    )
    assert item.native_id == "5"
    assert item.url is None
    assert item.updated_at.year == 2023


def test_unresolved_custom_fields_are_reported() -> None:
    mapper = Mapper(load_spec("jira"), CONTEXT)
    assert {"summary", "status", "customfield_10016", "issuelinks", "parent", "fixVersions"} <= set(mapper.fields_read)
    assert "customfield_10028" not in mapper.fields_read
    assert "field:sprint" in mapper.unresolved
    assert "field:estimate" not in mapper.unresolved


def test_keep_raw() -> None:
    raw = issue()
    assert Mapper(load_spec("jira"), CONTEXT).map(raw).raw is raw
    assert Mapper(load_spec("jira"), CONTEXT, keep_raw=False).map(raw).raw is None


def test_preview_and_mapper_for() -> None:
    item = preview("jira", issue(), CONTEXT, {"status": {"To Do": "backlog"}})
    assert item.status.category.value == "backlog"
    assert item.raw is None
    assert item.url == "https://acme.atlassian.net/browse/A-1"
    assert mapper_for("jira", CONTEXT, None).map(issue()).status.category.value == "todo"


def test_engine_is_tool_neutral() -> None:
    """A minimal spec for another tool works with the generic transforms only."""
    spec = MappingSpec.model_validate(
        {
            "tool": "tracker",
            "tables": {"state": {"open": "todo", "closed": "done"}},
            "fields": {
                "native_id": {"path": "number", "transform": "string"},
                "title": "title",
                "status": {
                    "object": {"category": {"path": "state", "table": "state", "default": "todo"}, "name": "state"}
                },
                "updated_at": {"path": "updated_at", "transform": "datetime"},
                "labels": {"path": "labels", "transform": "names"},
                "due_on": {"path": "milestone.due_on", "transform": "date"},
            },
        }
    )
    assert check(spec) == []
    item = Mapper(spec, {"source": "gh", "tool": "tracker"}).map(
        {
            "number": 7,
            "title": "T",
            "state": "closed",
            "updated_at": "2025-01-01T00:00:00Z",
            "labels": [{"name": "bug"}],
            "milestone": {"due_on": "2025-02-01T08:00:00Z"},
        }
    )
    assert (item.id, item.status.category.value, item.labels, str(item.due_on)) == (
        "gh:7",
        "done",
        ["bug"],
        "2025-02-01",
    )


def test_registry_has_the_named_transforms() -> None:
    names = set(engine.transforms.registry())
    assert {"adf_to_markdown", "jira_sprint", "jira_links", "date", "datetime", "jira_release", "jira_people"} <= names


def test_mappings_depend_only_on_the_shared_schema() -> None:
    import re
    from pathlib import Path

    root = Path(engine.__file__).parent
    offenders = []
    for path in root.rglob("*.py"):
        for line in path.read_text().splitlines():
            found = re.match(r"\s*(?:from|import)\s+(hub|connectors)(\.\w+)*", line)
            if found and not line.strip().startswith("from hub.schema import"):
                offenders.append(f"{path.name}: {line.strip()}")
    assert offenders == []


def _counting(monkeypatch: pytest.MonkeyPatch, name: str) -> list[int]:
    calls: list[int] = []
    real = getattr(engine, name)

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(engine, name, counted)
    return calls


@pytest.mark.parametrize("overrides", [None, {"status": {"To Do": "backlog"}, "estimate": "Story point estimate"}])
def test_a_spec_is_validated_merged_and_checked_in_one_pass(
    monkeypatch: pytest.MonkeyPatch, overrides: dict[str, Any] | None
) -> None:
    # Issue 13: mapper_for checked the overrides, the merged spec, then the spec again in Mapper;
    # check(spec, overrides) did each twice.
    spec_checks = _counting(monkeypatch, "_spec_errors")
    override_checks = _counting(monkeypatch, "_override_errors")
    mapper_for("jira", CONTEXT, overrides)
    assert (len(spec_checks), len(override_checks)) == (1, 1 if overrides else 0)
    spec_checks.clear()
    override_checks.clear()
    assert check(load_spec("jira"), overrides) == []
    assert (len(spec_checks), len(override_checks)) == (1, 1 if overrides else 0)


def test_mapper_for_reports_what_check_reports() -> None:
    overrides = {"status": {"A": "x"}, "fields": {"kind": {"path": "fields.issuetype.name", "table": "kinds"}}}
    with pytest.raises(SpecError) as caught:
        mapper_for("jira", CONTEXT, overrides)
    assert caught.value.errors == check(load_spec("jira"), overrides)
    merged_only = {"fields": {"kind": {"path": "fields.issuetype.name", "table": "kinds"}}}
    with pytest.raises(SpecError) as caught:
        mapper_for("jira", CONTEXT, merged_only)
    assert (
        caught.value.errors
        == check(load_spec("jira"), merged_only)
        == ["fields.kind.table: unknown table 'kinds' (known: " + ", ".join(sorted(load_spec("jira").tables)) + ")"]
    )
