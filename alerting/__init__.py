"""Alerts: rules over each finalized window, then routing, grouping, silences and delivery.

Built so far: ``alerting.rules`` (which conditions hold in a window, and the pending,
firing and resolved state of each alert, window by window) and the Slack webhook notifier
(``alerting.notifiers.slack``). Routing, the outbox relay and email come next.
"""
