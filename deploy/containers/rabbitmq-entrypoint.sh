#!/bin/sh
# rabbitmq.Dockerfile's entry point: writes the node's configuration from the official
# image's variables (the password goes into a file only this user reads), then runs the
# node in the foreground.
set -eu
conf=/tmp/rabbitmq.conf
umask 077
cat >"$conf" <<CONF
listeners.tcp.default = ${RABBITMQ_LISTEN:-0.0.0.0}:${RABBITMQ_NODE_PORT:-5672}
default_user = ${RABBITMQ_DEFAULT_USER:-guest}
default_pass = ${RABBITMQ_DEFAULT_PASS:?RABBITMQ_DEFAULT_PASS must be set}
default_vhost = ${RABBITMQ_DEFAULT_VHOST:-/}
default_user_tags.administrator = true
default_permissions.configure = .*
default_permissions.read = .*
default_permissions.write = .*
loopback_users = none
log.console = true
CONF
export RABBITMQ_CONFIG_FILE=$conf
exec rabbitmq-server
