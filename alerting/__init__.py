"""Rules to alerts: routing, dedup, grouping, cooldown, Slack and email senders, outbox.

Empty until the alerting work lands; importable so the layout in docs/architecture.md exists.
"""
