/* peers: see peers.h. */
#include "peers.h"

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

/* The contract's error bodies carry errorMessage; show it (or the start of the body). */
static void describe_answer(const httpc_response *resp, const char *what, char *reason, size_t cap) {
  const char *msg = NULL;
  json_t *j = resp->body ? json_loadb(resp->body, resp->body_len, 0, NULL) : NULL;
  if (json_is_object(j)) msg = json_string_value(json_object_get(j, "errorMessage"));
  json_t *details = msg ? json_object_get(j, "details") : NULL;
  char *dump = details ? json_dumps(details, JSON_COMPACT) : NULL;
  if (msg)
    snprintf(reason, cap, "%s: HTTP %ld: %s%s%s", what, resp->status, msg, dump ? " " : "", dump ? dump : "");
  else
    snprintf(reason, cap, "%s: HTTP %ld: %.120s", what, resp->status, resp->body ? resp->body : "");
  free(dump);
  json_decref(j);
}

static int transport_failure(int rc, const httpc_response *resp, const char *what, char *reason, size_t cap) {
  snprintf(reason, cap, "%s: %s%s%s", what, httpc_strerror(rc), resp->error[0] ? ": " : "", resp->error);
  /* A body over the cap will be over it next time too; a bad URL stays bad. */
  if (rc == HTTPC_ERR_TOO_LARGE || rc == HTTPC_ERR_INVALID) return PEER_ERR_PERMANENT;
  return PEER_ERR_TRANSIENT;
}

int peers_get_resource(const peers *p, int32_t id, const char *request_id, httpc_response *resp, bool *found,
                       char *reason, size_t reason_cap) {
  char url[1024];
  snprintf(url, sizeof url, "%s/resources/%" PRId32, p->resource_url, id);
  httpc_request req = {.method = "GET", .url = url, .request_id = request_id};
  int rc = httpc_do(p->resource_http, &req, resp);
  count_call(p, PROC_PEER_RESOURCE, rc, resp);
  int out;
  *found = false;
  if (rc != HTTPC_OK)
    out = transport_failure(rc, resp, "GET resource", reason, reason_cap);
  else if (resp->status == 200) {
    snprintf(reason, reason_cap, "ok");
    *found = true;
    return PEER_OK; /* the caller owns resp now */
  } else if (resp->status == 404) {
    describe_answer(resp, "GET resource", reason, reason_cap);
    out = PEER_OK;
  } else {
    describe_answer(resp, "GET resource", reason, reason_cap);
    out = transient_status(resp->status) ? PEER_ERR_TRANSIENT : PEER_ERR_PERMANENT;
  }
  httpc_response_free(resp);
  return out;
}

int peers_post_song(const peers *p, int32_t id, const mp3_song *song, const char *request_id, bool *created,
                    char *reason, size_t reason_cap) {
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
  httpc_request req = {.method = "POST", .url = url, .body = body, .body_len = strlen(body), .request_id = request_id};
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
    describe_answer(&resp, "POST song", reason, reason_cap);
    out = transient_status(resp.status) ? PEER_ERR_TRANSIENT : PEER_ERR_PERMANENT;
  }
  httpc_response_free(&resp);
  return out;
}
