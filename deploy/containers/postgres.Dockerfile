# syntax=docker/dockerfile:1
# PostgreSQL for `make containers` only, in place of the postgres image this machine
# cannot fetch: Debian 12's PostgreSQL 15 on the same base as our images, behaving as the
# official image does for deploy/compose.yaml: POSTGRES_USER / POSTGRES_PASSWORD /
# POSTGRES_DB, scripts in /docker-entrypoint-initdb.d run once on an empty PGDATA
# (/var/lib/postgresql/data, the volume), port from PGPORT (5432).
ARG DEBIAN_IMAGE=debian:12.8-slim
FROM ${DEBIAN_IMAGE}
# no "main" cluster from the package, and nothing started while building
RUN printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d \
 && mkdir -p /etc/postgresql-common \
 && echo 'create_main_cluster = false' >/etc/postgresql-common/createcluster.conf \
 && apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql-15 \
 && rm -rf /var/lib/apt/lists/* /usr/sbin/policy-rc.d \
 && mkdir -p /var/lib/postgresql/data /docker-entrypoint-initdb.d \
 && chown postgres:postgres /var/lib/postgresql/data && chmod 700 /var/lib/postgresql/data
COPY postgres-entrypoint.sh /usr/local/bin/postgres-entrypoint
ENV PATH=/usr/lib/postgresql/15/bin:$PATH \
    PGDATA=/var/lib/postgresql/data \
    PGPORT=5432
USER postgres
EXPOSE 5432
STOPSIGNAL SIGINT
ENTRYPOINT ["/usr/local/bin/postgres-entrypoint"]
