# callrouter: one image for every process (web, worker, migrations, the sandbox for a trial).
#   docker build -t callrouter .
#   docker run --env-file callrouter.env -p 8000:8000 callrouter      # the web service
#   docker run --env-file callrouter.env callrouter python worker.py  # an RQ worker
# Settings come from the environment (README, "Configuration"); nothing secret is in the image.

# The pages' NL Design System CSS (Utrecht components, EUPL-1.2), from npm as at `make install`.
FROM node:22-bookworm-slim AS assets
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --silent

FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    CALLROUTER_ENV=production \
    CALLROUTER_INSTANCE=/var/lib/callrouter \
    PROMETHEUS_MULTIPROC_DIR=/tmp/callrouter-metrics
# tini as PID 1: signals reach gunicorn's master (graceful stop on SIGTERM) and orphans are reaped.
RUN apt-get update \
    && apt-get install -y --no-install-recommends tini \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --home-dir /srv/callrouter callrouter \
    && install -d -o callrouter -g callrouter /var/lib/callrouter /tmp/callrouter-metrics
WORKDIR /srv/callrouter
# Dependencies first (a layer that changes only with pyproject.toml), then the code.
COPY pyproject.toml README.md ./
COPY callrouter ./callrouter
RUN pip install --no-compile -e ".[postgres]"
COPY app.py worker.py gunicorn.conf.py ./
COPY config ./config
COPY --from=assets /src/node_modules/@utrecht/component-library-css/dist \
    ./node_modules/@utrecht/component-library-css/dist
USER callrouter
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=4)"]
ENTRYPOINT ["tini", "--"]
CMD ["gunicorn", "app:app", "--bind", "0.0.0.0:8000"]
