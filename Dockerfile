# syntax=docker/dockerfile:1
#
# One image for the whole AllSource suite. The command picks the service:
#   allsource-storage (default, port 50054), allsource-ingest (50051), allsource-query (50052),
#   allsource-admin (50053)
# Services bind 127.0.0.1 unless told otherwise; in a container set ALLSOURCE_<SERVICE>__HOST=0.0.0.0
# (docker-compose.yml does), and point the public services at storage with ALLSOURCE_STORAGE__ADDRESS.

ARG PYTHON_IMAGE=python:3.11-slim

# --- build: install the package and its dependencies into a self-contained virtualenv -----------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# Only what the wheels need: the client package, the metadata, the generated protobuf code (gen/, a
# package root in pyproject) and the sources. README.m[d] is a glob so the build works while the README (named as the
# project's readme) is absent; BuildKit allows a wildcard that matches nothing.
COPY clients/python/ clients/python/
COPY pyproject.toml README.m[d] ./
COPY gen/ gen/
COPY shared/ shared/
COPY services/ services/
# Non-editable: the runtime stage gets the venv, not /src. The client package (the public API's
# generated code) first: the suite depends on it.
RUN pip install ./clients/python
RUN pip install .

# --- runtime ----------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE}
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    ALLSOURCE_STORAGE__DATA_DIR=/var/lib/allsource

# A fixed numeric uid/gid so volume ownership is predictable and orchestrators can verify non-root.
# The data dir is created (and chowned) before VOLUME: changes after VOLUME are discarded, and Docker
# seeds a new named volume with the image's ownership of the mount point.
RUN groupadd --system --gid 10001 allsource \
    && useradd --system --uid 10001 --gid allsource --home-dir /var/lib/allsource --no-create-home \
        --shell /usr/sbin/nologin allsource \
    && install -d -o allsource -g allsource -m 0750 /var/lib/allsource \
    && install -d -o allsource -g allsource -m 0700 /run/allsource/secrets

COPY --from=build /opt/venv /opt/venv
# grpc.health.v1 probe for health checks: `python /usr/local/lib/allsource/health_probe.py PORT SERVICE`.
COPY tools/health_probe.py /usr/local/lib/allsource/health_probe.py

USER 10001:10001
WORKDIR /var/lib/allsource
VOLUME ["/var/lib/allsource"]
EXPOSE 50051-50054

# No HEALTHCHECK here: the port and service name depend on which service the container runs, so each
# compose service declares its own (see docker-compose.yml).
# Exec form: the service is PID 1 and receives SIGTERM itself, then drains for grpc.shutdown_grace_s.
STOPSIGNAL SIGTERM
CMD ["allsource-storage"]
