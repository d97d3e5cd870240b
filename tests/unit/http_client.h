/* http_client: the libcurl client the HTTP unit tests (http_test, http_evloop_test,
 * svc_test) drive their loopback servers with. One blocking request per call, 20 s at most;
 * the answer is copied into a fixed struct (a body longer than `body` is cut). */
#ifndef FERMATA_TEST_HTTP_CLIENT_H
#define FERMATA_TEST_HTTP_CLIENT_H

#include <stddef.h>

typedef struct {
  char body[32768];
  size_t len;
  char ctype[128]; /* Content-Type, X-Request-Id and Allow of the answer, "" when absent */
  char reqid[80];
  char allow[80];
  long status; /* 0 when no answer came */
} resp;

/* `method` on http://127.0.0.1:port`path`; `body` (body_len bytes) when not NULL; `hdr`: one
 * extra request header line ("Name: value") or NULL. */
resp http_client_call(unsigned port, const char *method, const char *path, const char *body, long body_len,
                      const char *hdr);

#endif
