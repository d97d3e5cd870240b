/* songs: see songs.h. */
#include "songs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct songs {
  char *url;
  httpc *http;
  log_sink *lg;
};

songs *songs_new(const char *url, httpc *http, log_sink *lg) {
  songs *s = calloc(1, sizeof *s);
  if (!s) return NULL;
  s->url = strdup(url);
  if (!s->url) {
    free(s);
    return NULL;
  }
  s->http = http;
  s->lg = lg;
  return s;
}

void songs_free(songs *s) {
  if (!s) return;
  free(s->url);
  free(s);
}

int songs_delete(songs *s, const int32_t *ids, size_t n, const char *request_id, const trace_ctx *trace) {
  size_t i = 0;
  while (i < n) {
    /* chunks whose CSV stays within the Song Service's 200-character limit */
    char csv[201];
    size_t o = 0;
    while (i < n) {
      char one[16];
      int k = snprintf(one, sizeof one, "%s%d", o ? "," : "", ids[i]);
      if (o + (size_t)k > 200) break;
      memcpy(csv + o, one, (size_t)k);
      o += (size_t)k;
      i++;
    }
    csv[o] = '\0';
    char url[512];
    snprintf(url, sizeof url, "%s/songs?id=%s", s->url, csv);
    httpc_request req = {.method = "DELETE", .url = url, .request_id = request_id, .trace = trace, .peer = "song"};
    httpc_response resp;
    int rc = httpc_do(s->http, &req, &resp);
    long status = resp.status;
    httpc_response_free(&resp);
    if (rc != 0 || status != 200) {
      log_event(s->lg, LOG_LEVEL_WARN, "song metadata deletion failed; will retry", "error=\"%s\" status=%ld ids=%s",
                rc ? httpc_strerror(rc) : "http", status, csv);
      return -1;
    }
  }
  return 0;
}
