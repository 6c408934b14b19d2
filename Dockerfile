# syntax=docker/dockerfile:1
# realtime-worker container: one per Clerk organization (see deploy/ and docs/operations.md).
#
# Stage 1 builds the project wheel and the wheels of its runtime dependencies.
# Stage 2 installs only those wheels: no compiler, no dev extras, no devstack
# (the wheel packages worker/ alone, see [tool.hatch.build.targets.wheel]).

FROM python:3.11-slim-bookworm AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /src
# Only what the wheel needs; .dockerignore keeps everything else out of the context.
COPY pyproject.toml README.md ./
COPY worker/ worker/
# --no-deps for the project itself, then every runtime dependency as a wheel, so the
# final stage installs offline (--no-index) exactly what was resolved here.
RUN pip wheel --no-deps --wheel-dir /wheels . \
 && pip wheel --wheel-dir /wheels /wheels/realtime_worker-*.whl


FROM python:3.11-slim-bookworm AS runtime

ARG UID=10001
ARG GID=10001

# PYTHONDONTWRITEBYTECODE: the root filesystem is read-only in Kubernetes; the .pyc
# files are compiled at install time below, so nothing is written at run time.
# HOME and TMPDIR point at /tmp, the only writable path (an emptyDir in the pod).
# MALLOC_MMAP_THRESHOLD_: glibc raises its mmap threshold as large blocks are freed, then
# keeps the delivery ledger's freed tables inside the heap; a fixed 128 KiB threshold
# returns them to the OS, so RSS stays flat under load (docs/performance.md, section 4).
ENV PYTHONDONTWRITEBYTECODE=1 \
    MALLOC_MMAP_THRESHOLD_=131072 \
    PYTHONUNBUFFERED=1 \
    PYTHONFAULTHANDLER=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HOME=/tmp \
    TMPDIR=/tmp \
    PROMETHEUS_DISABLE_CREATED_SERIES=True \
    WORKER_HTTP_PORT=9464

# A numeric, system user without a login shell or home directory of its own.
RUN groupadd --system --gid "${GID}" worker \
 && useradd --system --uid "${UID}" --gid "${GID}" --no-create-home \
        --home-dir /tmp --shell /usr/sbin/nologin worker

# Bind-mount the wheels from the build stage so they never land in a layer.
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-index --find-links=/wheels --compile /wheels/realtime_worker-*.whl

USER ${UID}:${GID}
WORKDIR /tmp

EXPOSE 9464

# slim has no curl: probe /healthz with the standard library. urlopen raises on any
# non-2xx answer or connection error, which exits non-zero.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('WORKER_HTTP_PORT', '9464'), timeout=4)"]

ENTRYPOINT ["realtime-worker"]
CMD ["run"]
