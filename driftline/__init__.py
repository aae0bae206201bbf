"""Driftline: Kafka-native drift, quality and anomaly monitoring for models in production.

This package holds what every other package may import: the error hierarchy and the
version. It imports nothing of ours, so ``detectors`` and ``schemas`` can depend on it
without breaking the one-way dependency rule of docs/architecture.md.
"""

__version__ = "0.1.0"
