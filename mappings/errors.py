"""Errors raised by mappings: one for records, one for specs and overrides."""

from __future__ import annotations


class MappingError(Exception):
    """A raw record that cannot be mapped. The sync engine records it and carries on."""

    def __init__(self, native_id: str | None, message: str) -> None:
        super().__init__(f"{native_id or '?'}: {message}")
        self.native_id = native_id
        self.message = message


class SpecError(Exception):
    """A mapping spec or a source's overrides are invalid; `errors` holds one line per problem."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors
