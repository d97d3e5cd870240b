# syntax=docker/dockerfile:1
# Prometheus for `make containers` only, in prom/prometheus's place (no image registry
# here): Debian 12's package, the one the local stack runs, on the same base as our images.
# Laid out as the official image: the configuration at /etc/prometheus/prometheus.yml, the
# samples in /prometheus (the volume), entry point the server itself.
ARG DEBIAN_IMAGE=debian:12.8-slim
FROM ${DEBIAN_IMAGE}
# nothing started while building
RUN printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d \
 && apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus curl \
 && rm -rf /var/lib/apt/lists/* /usr/sbin/policy-rc.d \
 && mkdir -p /prometheus && chown prometheus:prometheus /prometheus
USER prometheus
EXPOSE 9090
ENTRYPOINT ["/usr/bin/prometheus"]
CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]
