# The Driftline worker image. Not built in this repository's CI (no Docker engine there);
# the same code runs in CI as local processes (make test).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY driftline driftline
COPY detectors detectors
COPY schemas schemas
COPY storage storage
COPY stream_app stream_app
COPY alerting alerting
COPY api api
RUN pip install --no-cache-dir .
USER nobody
ENTRYPOINT ["driftline"]
CMD ["worker"]
