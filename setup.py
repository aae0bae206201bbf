"""The optional native envelope decoder; everything else is declared in pyproject.toml.

``optional=True``: without a C compiler the install goes on, and envelopes take the msgspec
decoder (about half the speed; the worker logs a warning saying so).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension("schemas._envelope_native", sources=["schemas/_envelope_native.c"], optional=True)
    ]
)
