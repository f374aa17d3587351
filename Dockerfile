# lync-owa-exporter: runs as a non-root user on a read-only root file system; mount the configuration
# at /etc/lync-owa-exporter/config.yaml and pass passwords by environment variable or secret file.
#   docker build -t lync-owa-exporter .
#   docker run --read-only --cap-drop ALL -p 10112:10112 \
#     -v ./config.yaml:/etc/lync-owa-exporter/config.yaml:ro -e LYNC_MONITOR_PASSWORD lync-owa-exporter
# PYTHON_IMAGE is any Debian-based image with python3 and pip; the tests build with a stand-in of it.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY exporter ./exporter
COPY collectors ./collectors
COPY simulator ./simulator
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM ${PYTHON_IMAGE}
RUN useradd --system --uid 10112 --home-dir /nonexistent --shell /usr/sbin/nologin exporter
COPY --from=build /wheels /wheels
# Byte-code is compiled at install time: at run time the root file system may be read-only.
RUN pip install --no-cache-dir --compile /wheels/*.whl && rm -rf /wheels
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
USER 10112
EXPOSE 10112
# /healthz needs no credentials; `healthcheck` falls back to HTTPS when --web.config.file turns TLS on.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["lync-owa-exporter", "healthcheck", "--web.listen-address=:10112"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["lync-owa-exporter"]
CMD ["run", "--config.file=/etc/lync-owa-exporter/config.yaml", "--web.listen-address=:10112"]
