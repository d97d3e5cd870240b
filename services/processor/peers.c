/* peers: see peers.h. */
#include "peers.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

static proc_call_class call_class(int rc, long status) {
  if (rc != HTTPC_OK) return PROC_CALL_ERROR;
  if (status >= 500) return PROC_CALL_5XX;
  if (status >= 400) return PROC_CALL_4XX;
  return PROC_CALL_2XX;
}

static void count_call(const peers *p, proc_peer peer, int rc, const httpc_response *resp) {
  if (!p->stats) return;
  proc_call_class k = call_class(rc, resp->status);
  atomic_fetch_add(&p->stats->calls[peer][k], 1);
  double us = resp->elapsed_ms > 0 ? resp->elapsed_ms * 1000.0 : 0;
  atomic_fetch_add(&p->stats->call_us[peer][k], (unsigned long long)us);
}

/* Statuses that say "not now" rather than "never". */
static int transient_status(long status) { return status >= 500 || status == 408 || status == 429; }

/* The contract's error bodies carry errorMessage; show it (or the start of the body).
 * body[0..len) need not be NUL-terminated. */
static void describe_answer(long status, const char *body, size_t len, const char *what, char *reason, size_t cap) {
  const char *msg = NULL;
  json_t *j = body && len ? json_loadb(body, len, 0, NULL) : NULL;
  if (json_is_object(j)) msg = json_string_value(json_object_get(j, "errorMessage"));
  json_t *details = msg ? json_object_get(j, "details") : NULL;
  char *dump = details ? json_dumps(details, JSON_COMPACT) : NULL;
  if (msg)
    snprintf(reason, cap, "%s: HTTP %ld: %s%s%s", what, status, msg, dump ? " " : "", dump ? dump : "");
  else
    snprintf(reason, cap, "%s: HTTP %ld: %.*s", what, status, (int)(len < 120 ? len : 120), body ? body : "");
  free(dump);
  json_decref(j);
}

static int transport_failure(int rc, const httpc_response *resp, const char *what, char *reason, size_t cap) {
  snprintf(reason, cap, "%s: %s%s%s", what, httpc_strerror(rc), resp->error[0] ? ": " : "", resp->error);
  /* A body over the cap will be over it next time too; a bad URL stays bad. */
  if (rc == HTTPC_ERR_TOO_LARGE || rc == HTTPC_ERR_INVALID) return PEER_ERR_PERMANENT;
  return PEER_ERR_TRANSIENT;
}

/* Reads an unsigned decimal at *p, advancing it; false when there is none or it overflows. */
static bool read_u64(const char **p, uint64_t *out) {
  if (**p < '0' || **p > '9') return false;
  char *end;
  errno = 0;
  unsigned long long v = strtoull(*p, &end, 10);
  if (errno == ERANGE) return false;
  *p = end;
  *out = v;
  return true;
}

/* "bytes FIRST-LAST/TOTAL" (206) or "bytes STAR/TOTAL" (416, first = last = UINT64_MAX). */
static bool parse_content_range(const char *v, uint64_t *first, uint64_t *last, uint64_t *total) {
  if (strncmp(v, "bytes ", 6) != 0) return false;
  v += 6;
  if (*v == '*') {
    *first = *last = UINT64_MAX;
    v++;
  } else if (!read_u64(&v, first) || *v++ != '-' || !read_u64(&v, last) || *last < *first) {
    return false;
  }
  return *v++ == '/' && read_u64(&v, total) && *v == '\0' && (*first == UINT64_MAX || *last < *total);
}

/* A 206 or 416 answer to "bytes=offset-(offset+want-1)" into *out; false when it does not
 * fit the question. */
static bool take_range(const httpc_response *resp, uint64_t offset, size_t want, peers_range *out) {
  uint64_t first, last, total;
  if (!parse_content_range(resp->content_range, &first, &last, &total)) return false;
  if (resp->status == 416) {
    if (first != UINT64_MAX || offset < total) return false;
    *out = (peers_range){.found = true, .got = 0, .total = total};
    return true;
  }
  if (first != offset || last - first + 1 != resp->body_len || resp->body_len > want || first == UINT64_MAX)
    return false;
  *out = (peers_range){.found = true, .got = resp->body_len, .total = total};
  return true;
}

int peers_get_range(const peers *p, int32_t id, const char *request_id, const trace_ctx *trace, uint64_t offset,
                    size_t want, void *buf, size_t buf_cap, peers_range *out, char *reason, size_t reason_cap) {
  *out = (peers_range){0};
  if (want == 0 || buf_cap < want || offset > UINT64_MAX - want) {
    snprintf(reason, reason_cap, "GET resource: bad range");
    return PEER_ERR_PERMANENT;
  }
  char url[1024], range[64];
  snprintf(url, sizeof url, "%s/resources/%" PRId32, p->resource_url, id);
  snprintf(range, sizeof range, "bytes=%" PRIu64 "-%" PRIu64, offset, offset + want - 1);
  httpc_request req = {.method = "GET",
                       .url = url,
                       .request_id = request_id,
                       .range = range,
                       .into = buf,
                       .into_cap = buf_cap,
                       .trace = trace,
                       .peer = "resource"};
  httpc_response resp;
  int rc = httpc_do(p->resource_http, &req, &resp);
  count_call(p, PROC_PEER_RESOURCE, rc, &resp);
  bool ok_status = resp.status == 206 || resp.status == 200 || resp.status == 416;
  /* an error answer longer than the window is still an answer: its status decides */
  if (rc == HTTPC_ERR_TOO_LARGE && resp.status >= 300 && !ok_status) rc = HTTPC_OK;
  if (rc != HTTPC_OK) return transport_failure(rc, &resp, "GET resource", reason, reason_cap);
  if (p->stats && (resp.status == 206 || resp.status == 200)) atomic_fetch_add(&p->stats->fetched_bytes, resp.body_len);
  if (resp.status == 404) {
    describe_answer(resp.status, buf, resp.body_len, "GET resource", reason, reason_cap);
    return PEER_OK;
  }
  if (resp.status == 200 && offset == 0 && resp.body_len <= want) {
    *out = (peers_range){.found = true, .got = resp.body_len, .total = resp.body_len};
  } else if (resp.status == 206 || resp.status == 416) {
    if (!take_range(&resp, offset, want, out)) {
      snprintf(reason, reason_cap, "GET resource: HTTP %ld with Content-Range \"%s\" for %s", resp.status,
               resp.content_range, range);
      return PEER_ERR_TRANSIENT; /* a resource does not change: a server's slip, worth another try */
    }
  } else {
    describe_answer(resp.status, buf, resp.body_len, "GET resource", reason, reason_cap);
    return transient_status(resp.status) ? PEER_ERR_TRANSIENT : PEER_ERR_PERMANENT;
  }
  snprintf(reason, reason_cap, "ok");
  return PEER_OK;
}

int peers_post_song(const peers *p, int32_t id, const mp3_song *song, const char *request_id, const trace_ctx *trace,
                    bool *created, char *reason, size_t reason_cap) {
  *created = false;
  json_t *doc = json_pack("{s:I, s:s, s:s, s:s, s:s, s:s}", "id", (json_int_t)id, "name", song->name, "artist",
                          song->artist, "album", song->album, "duration", song->duration, "year", song->year);
  char *body = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
  json_decref(doc);
  if (!body) {
    snprintf(reason, reason_cap, "POST song: out of memory building the body");
    return PEER_ERR_TRANSIENT;
  }
  char url[1024];
  snprintf(url, sizeof url, "%s/songs", p->song_url);
  httpc_request req = {.method = "POST",
                       .url = url,
                       .body = body,
                       .body_len = strlen(body),
                       .request_id = request_id,
                       .trace = trace,
                       .peer = "song"};
  httpc_response resp;
  int rc = httpc_do(p->song_http, &req, &resp);
  free(body);
  count_call(p, PROC_PEER_SONG, rc, &resp);
  int out;
  if (rc != HTTPC_OK) {
    out = transport_failure(rc, &resp, "POST song", reason, reason_cap);
  } else if (resp.status >= 200 && resp.status < 300) {
    snprintf(reason, reason_cap, "ok");
    *created = true;
    out = PEER_OK;
  } else if (resp.status == 409) {
    snprintf(reason, reason_cap, "already stored");
    out = PEER_OK;
  } else {
    describe_answer(resp.status, resp.body, resp.body_len, "POST song", reason, reason_cap);
    out = transient_status(resp.status) ? PEER_ERR_TRANSIENT : PEER_ERR_PERMANENT;
  }
  httpc_response_free(&resp);
  return out;
}
