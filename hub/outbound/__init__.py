"""Outbound webhooks (Standard Webhooks): subscriptions follow the change feed with a cursor.

models (what the API takes and shows), store (tables, leases), signing (Standard Webhooks
signatures), deliverer (the background task), service (what the admin routes call), events
(hub events that are not item changes).
"""
