# syntax=docker/dockerfile:1
# Zipkin for `make containers` only, in openzipkin/zipkin's place (no image registry here):
# the same release's exec jar from Maven Central (io.zipkin:zipkin-server, pinned with its
# sha256 in scripts/containers.sh, which puts it in the build context) on Debian 12's
# OpenJDK 17 runtime. As the official image: port 9411 (QUERY_PORT), traces in memory
# (STORAGE_TYPE=mem), a docker-healthcheck script asking GET /health.
ARG DEBIAN_IMAGE=debian:12.8-slim
FROM ${DEBIAN_IMAGE}
# the JRE's postinst links its man pages there: the base image has no man directories
RUN mkdir -p /usr/share/man/man1 \
 && apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends openjdk-17-jre-headless curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10011 --user-group --no-create-home --home-dir /zipkin \
      --shell /usr/sbin/nologin zipkin
COPY zipkin.jar /zipkin/zipkin.jar
COPY docker-healthcheck /usr/local/bin/docker-healthcheck
ENV STORAGE_TYPE=mem QUERY_PORT=9411
USER 10011:10011
EXPOSE 9411
# a small heap and the serial collector: one stack's traces, in memory
ENTRYPOINT ["java", "-Xms32m", "-Xmx256m", "-XX:+UseSerialGC", "-jar", "/zipkin/zipkin.jar"]
