# The engine's one image. Every process (lifecycle worker, lifecycle topics create,
# lifecycle simulate, ...) is picked by its command and configured only through
# LIFECYCLE_* environment variables, as in docker-compose.yml.
#
#   docker build -t lifecycle-engine .
#   docker run --rm -e LIFECYCLE_BROKER=host:9092 lifecycle-engine lifecycle worker

FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src

# Only what the package build needs: no .venv, .git or caches from a developer's checkout.
COPY pyproject.toml README.md ./
COPY schemas ./schemas
COPY lifecycle ./lifecycle
COPY analytics ./analytics
COPY streams ./streams
COPY agents ./agents
COPY cli ./cli
COPY mailer ./mailer

RUN pip install . \
 && useradd --create-home --uid 10001 lifecycle \
 && mkdir -p /data \
 && chown lifecycle /data

# The worker's table store (rocksdb); compose mounts a volume per worker here.
ENV LIFECYCLE_DATA_DIR=/data \
    LIFECYCLE_WEB_HOST=0.0.0.0

USER lifecycle
WORKDIR /home/lifecycle
EXPOSE 6066

CMD ["lifecycle", "worker"]
