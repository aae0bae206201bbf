"""The optional native extensions; everything else is declared in pyproject.toml.

``optional=True``: without a C compiler the install goes on. Envelopes then take the msgspec
decoder (about half the speed), fetched records aiokafka's own reader (the worker logs a
warning for each), the label join's id index and partitioner their numpy versions, and its take of
waiting summaries and its grouping of pairs by window their Python ones.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "schemas._envelope_native", sources=["schemas/_envelope_native.c"], optional=True
        ),
        Extension(
            "stream_app._record_batches", sources=["stream_app/_record_batches.c"], optional=True
        ),
        Extension(
            "stream_app._id_slots",
            sources=["stream_app/_id_slots.c"],
            depends=["stream_app/_buffers.h"],
            optional=True,
        ),
        Extension(
            "stream_app._summary_rows",
            sources=["stream_app/_summary_rows.c"],
            depends=["stream_app/_buffers.h"],
            optional=True,
        ),
    ]
)
