"""Detection quality: Driftline's verdicts on streams with known change points.

``python -m bench.detection --output docs/detection-quality.md`` (see ``__main__``).
"""
