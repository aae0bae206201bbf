"""Event contracts (prediction, label, retrain trigger, dead letter) and their JSON Schemas.

Empty until the streaming pipeline lands; importable so the layout in DESIGN.md exists.
"""
