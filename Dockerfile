FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    LOG_FORMAT=json

WORKDIR /app
COPY pyproject.toml README.md ./
COPY config ./config
COPY pipelines ./pipelines
COPY worker ./worker
COPY seeds ./seeds
RUN pip install . && useradd --create-home --uid 10001 ingest
USER ingest

ENTRYPOINT ["ingest"]
CMD ["worker"]
