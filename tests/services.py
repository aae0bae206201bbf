"""Fixtures for the real services integration tests use (filled by the infrastructure work)."""
