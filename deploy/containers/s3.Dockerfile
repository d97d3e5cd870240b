# syntax=docker/dockerfile:1
# The local object store for `make containers` only, in LocalStack's place (its image
# cannot be fetched here): versitygw, the S3 gateway the local stack runs, built by
# scripts/deps.sh (go install, pinned) and copied into the build context by
# scripts/containers.sh. Buckets are directories and objects files under
# /var/lib/localstack, the volume compose.yaml gives LocalStack; port from S3_LISTEN
# (:4566); credentials ROOT_ACCESS_KEY_ID / ROOT_SECRET_ACCESS_KEY.
ARG DEBIAN_IMAGE=debian:12.8-slim
FROM ${DEBIAN_IMAGE}
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10003 --user-group --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin fermata-s3 \
 && mkdir -p /var/lib/localstack && chown fermata-s3:fermata-s3 /var/lib/localstack && chmod 700 /var/lib/localstack
COPY versitygw /usr/local/bin/versitygw
ENV S3_LISTEN=:4566 \
    AWS_DEFAULT_REGION=us-east-1
USER 10003:10003
EXPOSE 4566
ENTRYPOINT ["/bin/sh", "-c", "exec versitygw --port \"$S3_LISTEN\" --region \"$AWS_DEFAULT_REGION\" --keep-alive posix /var/lib/localstack"]
