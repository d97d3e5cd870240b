# syntax=docker/dockerfile:1
# RabbitMQ for `make containers` only, in place of the rabbitmq image this machine cannot
# fetch: Debian 12's rabbitmq-server (3.10) on the same base as our images, taking what
# deploy/compose.yaml gives the official image: RABBITMQ_DEFAULT_USER / _PASS / _VHOST, data
# in /var/lib/rabbitmq (the volume); ports from RABBITMQ_NODE_PORT (5672),
# RABBITMQ_DIST_PORT and ERL_EPMD_PORT. No management plugin (it only adds start-up time).
ARG DEBIAN_IMAGE=debian:12.8-slim
FROM ${DEBIAN_IMAGE}
RUN printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d \
 && apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends rabbitmq-server \
 && rm -rf /var/lib/apt/lists/* /usr/sbin/policy-rc.d \
 && mkdir -p /var/lib/rabbitmq && chown rabbitmq:rabbitmq /var/lib/rabbitmq
COPY rabbitmq-entrypoint.sh /usr/local/bin/rabbitmq-entrypoint
ENV PATH=/usr/lib/rabbitmq/bin:$PATH \
    HOME=/var/lib/rabbitmq \
    RABBITMQ_LOGS=- \
    LANG=C.UTF-8
USER rabbitmq
EXPOSE 5672
ENTRYPOINT ["/usr/local/bin/rabbitmq-entrypoint"]
