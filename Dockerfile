# The Driftline image: the worker by default; the same image serves the API (`driftline api`),
# the alert relay (`driftline relay`) and the one-shot setup commands (docker-compose.yml).
# There is no Docker engine in this repository's CI: tests/test_deployment_files.py checks
# this file and docker-compose.yml (every file the build needs is copied, every command is a
# real CLI command), and `make test` runs the same code as local processes.

# -- build: the wheel, with the native envelope decoder compiled --------------------------
FROM python:3.11-slim AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# What pyproject.toml and setup.py name: the metadata, the readme, the C source (setup.py's
# extension is optional: without these the install would succeed without the decoder).
COPY pyproject.toml setup.py README.md ./
COPY driftline driftline
COPY detectors detectors
COPY schemas schemas
COPY storage storage
COPY registration registration
COPY stream_app stream_app
COPY alerting alerting
COPY api api
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

# -- run ---------------------------------------------------------------------------------
FROM python:3.11-slim
RUN useradd --create-home --uid 10001 --user-group driftline
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels \
    # The build fails here if a native extension was not compiled (optional in setup.py).
    && python -c "import schemas._envelope_native, stream_app._record_batches, stream_app._id_slots, stream_app._summary_rows"
USER driftline
WORKDIR /home/driftline
ENV DRIFTLINE_METRICS_PORT=9108 \
    DRIFTLINE_METRICS_HOST=0.0.0.0 \
    DRIFTLINE_DATA_DIR=/home/driftline/data \
    PYTHONUNBUFFERED=1
# The worker answers on its metrics endpoint once it runs; the API overrides this check
# with its /healthz (docker-compose.yml).
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9108/metrics', timeout=4)"]
ENTRYPOINT ["driftline"]
CMD ["worker"]
