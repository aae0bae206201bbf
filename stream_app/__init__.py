"""The Faust worker: topics, tables, the two stages, timers and the outbox relay.

See docs/architecture.md for the dataflow, the state each stage keeps and its clocks.
"""
