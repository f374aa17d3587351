# lync-owa-exporter: runs as a non-root user on a read-only root file system; mount the configuration
# at /etc/lync-owa-exporter/config.yaml and pass passwords by environment variable or secret file,
# or mount a keytab (and /etc/krb5.conf) read-only for Kerberos: see docs/deployment.md.
#   docker build --build-arg REVISION=$(git rev-parse HEAD) -t lync-owa-exporter .
#   docker run --read-only --cap-drop ALL -p 10112:10112 \
#     -v ./config.yaml:/etc/lync-owa-exporter/config.yaml:ro -e LYNC_MONITOR_PASSWORD lync-owa-exporter
# PYTHON_IMAGE is any Debian-based image with python3 and pip; the tests build with a stand-in of it.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
# gssapi and krb5 (the kerberos extra) build against MIT Kerberos; only the build stage has a compiler.
# (Python's headers come with the python:*-slim images; a Debian python3 needs python3-dev for them.)
RUN headers=$(python3 -c "import os, sysconfig; print(os.path.exists(sysconfig.get_paths()['include'] + '/Python.h'))") \
    && apt-get update -qq \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends gcc libc6-dev libkrb5-dev \
        $([ "$headers" = True ] || echo python3-dev) \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# The git revision shown by --version and lync_owa_build_info (the build context has no .git):
# setup.py stamps it into the package; without the argument it reads "unknown".
ARG REVISION=unknown
COPY pyproject.toml setup.py README.md ./
COPY exporter ./exporter
COPY collectors ./collectors
COPY simulator ./simulator
RUN LYNC_OWA_REVISION="$REVISION" pip wheel --no-cache-dir --wheel-dir /wheels '.[kerberos]'

FROM ${PYTHON_IMAGE}
# The run-time half of MIT Kerberos (GSSAPI for Kerberos and Negotiate). krb5.conf is the operator's:
# mount it at /etc/krb5.conf (or set KRB5_CONFIG); tickets stay in memory unless told otherwise.
RUN apt-get update -qq \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends libgssapi-krb5-2 libkrb5-3 \
    && rm -rf /var/lib/apt/lists/*
RUN useradd --system --uid 10112 --home-dir /nonexistent --shell /usr/sbin/nologin exporter
COPY --from=build /wheels /wheels
# Byte-code is compiled at install time: at run time the root file system may be read-only.
RUN pip install --no-cache-dir --compile /wheels/*.whl && rm -rf /wheels
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 KRB5CCNAME=MEMORY:lync-owa-exporter
USER 10112
EXPOSE 10112
# /healthz needs no credentials; `healthcheck` falls back to HTTPS when --web.config.file turns TLS on.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["lync-owa-exporter", "healthcheck", "--web.listen-address=:10112"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["lync-owa-exporter"]
CMD ["run", "--config.file=/etc/lync-owa-exporter/config.yaml", "--web.listen-address=:10112"]
