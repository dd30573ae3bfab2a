"""GET /v1/people (paged by id) and GET /v1/people/{id}."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from hub.api.deps import PageLimit, StoreDep
from hub.api.models import PersonPage, PersonPublic
from hub.api.params import NO_NUL, CursorText, FilterText
from hub.api.problems import ProblemError, problem_responses

router = APIRouter(tags=["people"])


@router.get("/people")
def list_people(
    store: StoreDep,
    limit: PageLimit,
    cursor: Annotated[CursorText | None, Query(description="`next_cursor` of the previous page.")] = None,
    email: Annotated[FilterText | None, Query(description="Only the person with this email.")] = None,
) -> PersonPage:
    """People, merged across tools by email, ordered by id."""
    found, next_cursor = store.queries.list_people(limit=limit, after=cursor, email=email)
    return PersonPage.model_validate({"people": found, "next_cursor": next_cursor})


@router.get("/people/{person_id}", responses=problem_responses(404))
def get_person(
    person_id: Annotated[str, Path(description="Hub person id.", pattern=NO_NUL)], store: StoreDep
) -> PersonPublic:
    """One person with their per-tool identities."""
    found = store.queries.get_person(person_id)
    if found is None:
        raise ProblemError(404, detail=f"no person with id {person_id!r}")
    return PersonPublic.model_validate(found)
