# OpsHub API server. Build: docker build -t opshub .   Run: docker run -p 8000:8000 -v opshub-data:/data opshub
# Several processes on PostgreSQL: compose.yaml (README, "Deployment").
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY pyproject.toml README.md requirements.lock ./
COPY hub ./hub
COPY connectors ./connectors
COPY mappings ./mappings
# The README tour (opshub import examples/items.jsonl ...) works from the working directory.
COPY examples /opt/opshub/examples
# The pinned versions (./scripts/lock), then the hub itself without resolving again.
RUN pip install --require-hashes -r requirements.lock \
    && pip install --no-deps . \
    && groupadd --system --gid 10001 opshub \
    && useradd --system --uid 10001 --gid 10001 --home-dir /data --no-create-home --shell /usr/sbin/nologin opshub \
    && mkdir -p /data \
    && chown opshub:opshub /data

# The SQLite file lives in the volume; set HUB_DATABASE_URL=postgresql://... to use PostgreSQL instead.
ENV HUB_DATABASE_URL=sqlite:////data/opshub.db \
    HUB_HOST=0.0.0.0 \
    HUB_PORT=8000
VOLUME ["/data"]
WORKDIR /opt/opshub
# Numeric, so Kubernetes runAsNonRoot can verify it without reading /etc/passwd (hadolint DL3066).
USER 10001:10001
EXPOSE 8000

# Readiness (database reachable and migrated), served by every role, worker included. Image
# formats without HEALTHCHECK (OCI, Kubernetes): probe /readyz (readiness) and /healthz
# (liveness) over HTTP instead.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/readyz' % os.environ.get('HUB_PORT', '8000'), timeout=4)"]

CMD ["opshub", "serve", "--host", "0.0.0.0"]
