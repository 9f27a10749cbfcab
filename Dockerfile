# The connector image, buildable outside Airbyte's monorepo with a plain `docker build -t airbyte/source-jmap:dev .`
# It follows Airbyte's Python template (airbytehq/airbyte docker-images/Dockerfile.python-connector): Airbyte's
# python-connector-base, pinned by digest (the same string as metadata.yaml's connectorBuildOptions.baseImage),
# the package installed into the base's Python, the console script as the entrypoint, and the non-root
# `airbyte` user (uid 1000) that the base image creates. Unlike the template it installs the dependencies
# from requirements.lock (exact versions with hashes, generated from setup.py by scripts/lock.sh), so two
# builds a week apart get the same packages, and it leaves no sources, build/ or *.egg-info in the image.
# BuildKit is needed for RUN --mount (the default builder since Docker 23; podman/buildah support it too).

# -- builder: setup.py and source_jmap/ into a wheel. Only the wheel leaves this stage.
FROM docker.io/airbyte/python-connector-base:4.0.0@sha256:d9894b6895923b379f3006fa251147806919c62b7d9021b5cd125bb67d7bbe22 AS builder
WORKDIR /build
COPY requirements-build.lock ./
RUN pip install --no-cache-dir --disable-pip-version-check --no-deps --require-hashes -r requirements-build.lock
COPY setup.py spec.json ./
COPY source_jmap ./source_jmap
# No build isolation and no index: the wheel is built with the pinned setuptools above and nothing else.
RUN pip wheel --no-cache-dir --disable-pip-version-check --no-deps --no-build-isolation --no-index \
        --wheel-dir /wheels . \
    && ls /wheels/airbyte_source_jmap-*.whl

# -- the image
FROM docker.io/airbyte/python-connector-base:4.0.0@sha256:d9894b6895923b379f3006fa251147806919c62b7d9021b5cd125bb67d7bbe22
USER root
WORKDIR /airbyte/integration_code
# The dependencies first, in their own layer: a code change does not reinstall them. requirements.lock
# stays in the image as the record of what is installed.
COPY requirements.lock ./
RUN id -u airbyte >/dev/null 2>&1 \
        || { echo "the base image has no airbyte user (Airbyte's python-connector-base creates it)" >&2; exit 1; } \
    && pip install --no-cache-dir --disable-pip-version-check --no-deps --require-hashes -r requirements.lock
# The connector's wheel, mounted from the builder for this one step (nothing of it stays behind). `spec`
# imports the package and the CDK: a dependency missing from requirements.lock fails the build here.
# SOURCE_DIGEST is for podman/buildah (1.28, Debian 12), which keeps reusing this step from its cache when
# only the mounted wheel changed; scripts/image.sh passes a digest of the sources so that a change rebuilds
# it. Docker's BuildKit keys the step on the mounted files itself: a plain `docker build` needs no value.
ARG SOURCE_DIGEST=""
RUN --mount=type=bind,from=builder,source=/wheels,target=/tmp/wheels \
    pip install --no-cache-dir --disable-pip-version-check --no-deps --no-index /tmp/wheels/airbyte_source_jmap-*.whl \
    && /usr/local/bin/source-jmap spec >/dev/null

USER airbyte
ENV AIRBYTE_ENTRYPOINT="/usr/local/bin/source-jmap"
ENTRYPOINT ["/usr/local/bin/source-jmap"]

LABEL io.airbyte.name=airbyte/source-jmap
LABEL io.airbyte.version=0.2.0
