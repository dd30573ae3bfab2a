"""Status history extraction: a tool's own record of status changes -> `hub.flow.history.Transition`s.

One module per tool, pure functions over the tool's raw payloads (like the mapping specs,
no store and no HTTP). Each takes a `StatusResolver` from the caller so that status names
become categories exactly as the source's mapping (with its overrides) files them.
"""
