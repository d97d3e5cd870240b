#!/bin/sh
# The Zipkin image's health check (zipkin.Dockerfile): healthy when GET /health answers 200.
exec curl -fsS -o /dev/null --max-time 3 "http://127.0.0.1:${QUERY_PORT:-9411}/health"
