"""Faust app: topics, agents, tables, windowing, the label join and timers (wiring only).

Empty until the streaming pipeline lands; importable so the layout in DESIGN.md exists.
"""
