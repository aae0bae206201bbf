# The Driftline worker image. Not built in this repository's CI (no Docker engine there);
# the same code runs in CI as local processes (make test).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY driftline driftline
COPY detectors detectors
COPY schemas schemas
COPY storage storage
COPY registration registration
COPY stream_app stream_app
COPY alerting alerting
COPY api api
# gcc builds the native envelope decoder (schemas/_envelope_native.c); without it the
# install still succeeds and envelopes take the slower msgspec decoder.
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev \
    && pip install --no-cache-dir . \
    && apt-get purge -y gcc libc6-dev && apt-get autoremove -y && rm -rf /var/lib/apt/lists/*
USER nobody
ENTRYPOINT ["driftline"]
CMD ["worker"]
