"""Flow: status history, flow metrics and Monte Carlo forecasts (issue 9), as pure functions.

- `hub.flow.history`: the `Transition` fact and `build_history()`, which turns an item's
  transitions (from any source, in any order, repeated) into one canonical `ItemHistory`
  with its derived facts (start, completion, reopened).
- `hub.flow.metrics`: throughput per ISO week, cycle and lead time percentiles, aging WIP and
  the cumulative flow diagram for a period, each with the items it left out and why; and
  `recent_weekly_throughput()`, the samples a forecast draws from.
- `hub.flow.stats`: the one percentile definition (nearest rank) all of them use.
- `hub.flow.forecast`: `when_done()` and `how_many()` over weekly throughput samples, seeded,
  plus the `backtest()` that checks the forecasts against known outcomes.

Nothing here reads the store, the clock or the network: the services that serve
`/v1/insights/flow` and `/v1/insights/forecast` load the data and pass it in, so the API, the
cockpit and the CLI compute every figure in one place. A tool's own history becomes
`Transition`s in `hub.flow.<tool>` (Jira: `hub.flow.jira`), which read raw payloads with
the source's mapping (hub orchestrates mappings; mappings import only the shared schema).
"""
