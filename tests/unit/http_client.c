/* http_client: see http_client.h. */
#include "http_client.h"

#include <curl/curl.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static size_t on_body(char *p, size_t sz, size_t n, void *ud) {
  resp *r = ud;
  size_t k = sz * n;
  if (r->len + k < sizeof r->body) memcpy(r->body + r->len, p, k), r->len += k, r->body[r->len] = '\0';
  return k;
}

static size_t on_header(char *p, size_t sz, size_t n, void *ud) {
  resp *r = ud;
  size_t k = sz * n;
  if (k > 14 && strncasecmp(p, "Content-Type: ", 14) == 0)
    snprintf(r->ctype, sizeof r->ctype, "%.*s", (int)(k - 16), p + 14);
  if (k > 14 && strncasecmp(p, "X-Request-Id: ", 14) == 0)
    snprintf(r->reqid, sizeof r->reqid, "%.*s", (int)(k - 16), p + 14);
  if (k > 7 && strncasecmp(p, "Allow: ", 7) == 0) snprintf(r->allow, sizeof r->allow, "%.*s", (int)(k - 9), p + 7);
  return k;
}

resp http_client_call(unsigned port, const char *method, const char *path, const char *body, long body_len,
                      const char *hdr) {
  resp r = {0};
  CURL *c = curl_easy_init();
  char url[256];
  snprintf(url, sizeof url, "http://127.0.0.1:%u%s", port, path);
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &r);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
  struct curl_slist *h = NULL;
  if (hdr) h = curl_slist_append(h, hdr);
  h = curl_slist_append(h, "Expect:");
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
  if (body) {
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, body_len);
  }
  curl_easy_perform(c);
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
  curl_slist_free_all(h);
  curl_easy_cleanup(c);
  return r;
}
