"""Alerts: rules over each finalized window, then routing, grouping, silences and delivery.

``alerting.rules`` (which conditions hold in a window, and the pending/firing/resolved state
of each alert, window by window) is the first part; routing, the outbox relay and the Slack
and email notifiers come next.
"""
