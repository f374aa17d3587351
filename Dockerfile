# lync-owa-exporter: runs as a non-root user; mount the configuration at
# /etc/lync-owa-exporter/config.yaml and pass passwords by environment variable or secret file.
FROM python:3.12-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY exporter ./exporter
COPY collectors ./collectors
COPY simulator ./simulator
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.12-slim
RUN useradd --system --uid 10112 --home-dir /nonexistent --shell /usr/sbin/nologin exporter
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
USER 10112
EXPOSE 10112
# /healthz needs no credentials; `healthcheck` falls back to HTTPS when --web.config.file turns TLS on.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["lync-owa-exporter", "healthcheck", "--web.listen-address=:10112"]
ENTRYPOINT ["lync-owa-exporter"]
CMD ["run", "--config.file=/etc/lync-owa-exporter/config.yaml", "--web.listen-address=:10112"]
