"""Insights services: one per question (flow metrics, forecasts), used by the API and the CLI.

They read the store in bulk and hand the data to the pure computations of hub/flow, so a
figure is computed in one place whichever surface shows it.
"""
