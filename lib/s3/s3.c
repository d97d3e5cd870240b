/* s3: S3 client on libcurl with CURLOPT_AWS_SIGV4.
 *
 * Design. Every operation builds one s3_req (method, bucket, key, extra headers, an
 * optional upload source and an optional streaming sink) and hands it to s3_perform(),
 * which borrows a curl easy handle from the client's pool, signs with SigV4 through
 * libcurl, runs the transfer, and classifies the outcome into an s3_err. Non-streamed
 * bodies (errors, CopyObject results) land in a capped buffer: we only ever need the first
 * few KB to find <Code> and <Message>.
 *
 * Things libcurl 7.88 does not do for us (see PITFALLS.md): the four-field SigV4 parameter
 * ("aws:amz:REGION:s3"; a loopback host gives curl nothing to guess from), the
 * x-amz-content-sha256 header (hex SHA-256 of in-memory bodies,
 * STREAMING-UNSIGNED-PAYLOAD-TRAILER or UNSIGNED-PAYLOAD for streams), and percent-encoding:
 * we accept only URL-safe keys, and the few query strings (the multipart calls') are built
 * sorted with every value escaped (s3_query_escape), as curl 7.88 signs them verbatim. We
 * never set Expect or X-Amz-Date by hand.
 *
 * The handles come from a lib/curlpool pool (reset, so live connections and the DNS cache
 * stay; up to max_idle kept). A handle is used by one thread at a time, which is all
 * libcurl asks.
 *
 * Files, from the bottom up: this one holds the error strings and the client (s3_new, its
 * SigV4 parameter, s3_free) and calls none of the others; s3_sign.c what SigV4 signs as
 * given (bucket names, keys, URLs, payload hashes); s3_sum.c the checksums and the
 * aws-chunked size of streamed bodies; s3_wire.c the parsing of what the store answers
 * (ranges, XML errors, classification, the Server header) and the multipart XML and query
 * values; s3_transfer.c one request through libcurl (s3__perform, the aws-chunked framing);
 * s3_ops.c the single-request operations; s3_mpu.c multipart uploads and sized copies.
 * s3_internal.h is what they share.
 */
#include "s3.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "curlpool/curlpool.h"
#include "s3_internal.h"

const char *s3_strerror(int code) {
  switch (code) {
  case S3_OK: return "ok";
  case S3_ERR_INVALID: return "invalid argument";
  case S3_ERR_NOMEM: return "out of memory";
  case S3_ERR_NOT_FOUND: return "not found";
  case S3_ERR_UNAVAILABLE: return "object store unavailable";
  case S3_ERR_DENIED: return "access denied";
  case S3_ERR_CONFLICT: return "conflict";
  case S3_ERR_RANGE: return "range not satisfiable";
  case S3_ERR_PROTOCOL: return "unexpected object store response";
  case S3_ERR_ABORTED: return "aborted by caller";
  case S3_ERR_IO: return "local read failed";
  case S3_ERR_NO_SPACE: return "object store is out of space";
  default: return "unknown error";
  }
}

/* ---------------------------------------------------------------- client */

int s3_sigv4_param(const char *region, char *buf, size_t cap) {
  if (region == NULL || region[0] == '\0' || strlen(region) > 32) return S3_ERR_INVALID;
  for (const char *p = region; *p; p++)
    if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-')) return S3_ERR_INVALID;
  int n = snprintf(buf, cap, "aws:amz:%s:s3", region);
  return (n < 0 || (size_t)n >= cap) ? S3_ERR_INVALID : 0;
}


int s3_new(const s3_config *cfg, s3_client **out) {
  *out = NULL;
  if (cfg == NULL || cfg->endpoint == NULL || cfg->access_key == NULL || cfg->secret_key == NULL || cfg->region == NULL)
    return S3_ERR_INVALID;
  if (strncmp(cfg->endpoint, "http://", 7) != 0 && strncmp(cfg->endpoint, "https://", 8) != 0) return S3_ERR_INVALID;
  const char *host = strstr(cfg->endpoint, "//") + 2;
  const char *slash = strchr(host, '/');
  if (host[0] == '\0' || host[0] == '/' || (slash && slash[1] != '\0')) return S3_ERR_INVALID;
  if (cfg->connect_timeout_ms < 0 || cfg->timeout_ms < 0 || cfg->max_idle_handles < 0) return S3_ERR_INVALID;
  if (cfg->checksum != S3_CHECKSUM_CRC32C && cfg->checksum != S3_CHECKSUM_SHA256 && cfg->checksum != S3_CHECKSUM_NONE)
    return S3_ERR_INVALID;

  s3_client *c = calloc(1, sizeof *c);
  if (c == NULL) return S3_ERR_NOMEM;
  if (s3_sigv4_param(cfg->region, c->sigv4, sizeof c->sigv4) != 0) {
    free(c);
    return S3_ERR_INVALID;
  }
  c->endpoint = strdup(cfg->endpoint);
  c->access_key = strdup(cfg->access_key);
  c->secret_key = strdup(cfg->secret_key);
  c->region = strdup(cfg->region);
  c->handles = curlpool_new(cfg->max_idle_handles ? cfg->max_idle_handles : 8);
  c->connect_timeout_ms = cfg->connect_timeout_ms ? cfg->connect_timeout_ms : 2000;
  c->timeout_ms = cfg->timeout_ms ? cfg->timeout_ms : 60000;
  c->checksum = cfg->checksum;
  if (!c->endpoint || !c->access_key || !c->secret_key || !c->region || !c->handles) {
    free(c->endpoint);
    free(c->access_key);
    free(c->secret_key);
    free(c->region);
    curlpool_free(c->handles);
    free(c);
    return S3_ERR_NOMEM;
  }
  size_t elen = strlen(c->endpoint);
  if (c->endpoint[elen - 1] == '/') c->endpoint[elen - 1] = '\0';
  *out = c;
  return 0;
}

void s3_free(s3_client *c) {
  if (c == NULL) return;
  curlpool_free(c->handles);
  free(c->endpoint);
  free(c->access_key);
  if (c->secret_key) explicit_bzero(c->secret_key, strlen(c->secret_key));
  free(c->secret_key);
  free(c->region);
  free(c);
}
