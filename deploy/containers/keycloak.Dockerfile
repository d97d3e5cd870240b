# syntax=docker/dockerfile:1
# Keycloak for `make containers` only, in quay.io/keycloak/keycloak's place (no image
# registry here): the same release, its distribution from Maven Central
# (org.keycloak:keycloak-quarkus-dist, pinned with its sha256 in scripts/containers.sh),
# on the Debian base, with the Java 21+ runtime Keycloak needs (Debian 12 has 17 only: the
# machine's Temurin JDK, copied into the build context by scripts/containers.sh). Laid out
# as the official image: /opt/keycloak, user 1000, entry point kc.sh, so compose.yaml's
# command, volumes and environment apply unchanged.
ARG DEBIAN_IMAGE=debian:12.8-slim
FROM ${DEBIAN_IMAGE}
COPY jdk /opt/java
COPY keycloak /opt/keycloak
RUN useradd --system --uid 1000 --user-group --no-create-home --home-dir /opt/keycloak \
      --shell /usr/sbin/nologin keycloak \
 && mkdir -p /opt/keycloak/data/import /opt/keycloak/data/h2 \
 && chown -R 1000:1000 /opt/keycloak
ENV JAVA_HOME=/opt/java PATH=/opt/java/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
USER 1000:1000
EXPOSE 8180 9000
ENTRYPOINT ["/opt/keycloak/bin/kc.sh"]
