/* ids: see ids.h. */
#include "ids.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text/text.h"

static int parse_span(const char *s, size_t len, int32_t *out) {
  if (len == 0) return -1;
  int64_t v = 0;
  for (size_t i = 0; i < len; i++) {
    if (s[i] < '0' || s[i] > '9') return -1;
    v = v * 10 + (s[i] - '0');
    if (v > INT32_MAX) return -1;
  }
  if (v <= 0) return -1;
  *out = (int32_t)v;
  return 0;
}

int ids_parse(const char *s, int32_t *out) {
  if (!s) return -1;
  return parse_span(s, strlen(s), out);
}

void ids_invalid_message(const char *s, char *msg, size_t size) { snprintf(msg, size, IDS_INVALID_FORMAT, s ? s : ""); }

void ids_list_free(ids_list *l) {
  if (!l) return;
  free(l->ids);
  l->ids = NULL;
  l->n = 0;
}

static int seen(const ids_list *l, int32_t id) {
  for (size_t i = 0; i < l->n; i++)
    if (l->ids[i] == id) return 1;
  return 0;
}

int ids_csv(const char *csv, ids_list *out, char *msg, size_t size) {
  out->ids = NULL;
  out->n = 0;
  if (!csv) {
    snprintf(msg, size, "Required parameter 'id' is missing");
    return -1;
  }
  size_t chars = text_utf8_len(csv);
  if (chars > IDS_CSV_MAX_CHARS) {
    snprintf(msg, size, "CSV string is too long: received %zu characters, maximum allowed is %d", chars,
             IDS_CSV_MAX_CHARS);
    return -1;
  }
  /* at most 101 elements fit in 200 characters */
  out->ids = malloc(sizeof(int32_t) * (IDS_CSV_MAX_CHARS / 2 + 2));
  if (!out->ids) {
    snprintf(msg, size, "Internal server error");
    return -1;
  }
  const char *p = csv;
  for (;;) {
    const char *comma = strchr(p, ',');
    size_t len = comma ? (size_t)(comma - p) : strlen(p);
    int32_t id;
    if (parse_span(p, len, &id) != 0) {
      snprintf(msg, size, "Invalid ID format: '%.*s'. Only positive integers are allowed", (int)len, p);
      ids_list_free(out);
      return -1;
    }
    if (!seen(out, id)) out->ids[out->n++] = id;
    if (!comma) break;
    p = comma + 1;
  }
  return 0;
}
