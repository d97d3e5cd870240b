/* msgs: see msgs.h. The encoder is a snprintf (the body is one integer); the decoder uses
 * jansson so that whitespace, member order and escapes are handled as JSON says. */
#include "msgs.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

static const mq_queue_spec msgs_queues[] = {
    {.name = MSGS_UPLOADED, .binding_key = MSGS_UPLOADED, .dead_letter = 1, .retry = 1},
    {.name = MSGS_PROCESSED, .binding_key = MSGS_PROCESSED, .dead_letter = 1, .retry = 1},
};

static const mq_topology msgs_topo = {
    .exchange = MSGS_EXCHANGE,
    .exchange_type = "direct",
    .queues = msgs_queues,
    .n_queues = sizeof msgs_queues / sizeof msgs_queues[0],
};

const mq_topology *msgs_topology(msgs_side side) {
  return side == MSGS_SIDE_RESOURCE || side == MSGS_SIDE_PROCESSOR ? &msgs_topo : NULL;
}

const char *msgs_consume_queue(msgs_side side) {
  switch (side) {
  case MSGS_SIDE_RESOURCE: return MSGS_PROCESSED;
  case MSGS_SIDE_PROCESSOR: return MSGS_UPLOADED;
  }
  return NULL;
}

const char *msgs_publish_key(msgs_side side) {
  switch (side) {
  case MSGS_SIDE_RESOURCE: return MSGS_UPLOADED;
  case MSGS_SIDE_PROCESSOR: return MSGS_PROCESSED;
  }
  return NULL;
}

int msgs_encode(int32_t resource_id, char *buf, size_t cap, size_t *len) {
  if (resource_id < 1 || !buf || !len) return MSGS_ERR_INVALID;
  int n = snprintf(buf, cap, "{\"resourceId\":%" PRId32 "}", resource_id);
  if (n < 0 || (size_t)n >= cap) return MSGS_ERR_INVALID;
  *len = (size_t)n;
  return MSGS_OK;
}

static int bad(char *reason, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int bad(char *reason, size_t cap, const char *fmt, ...) {
  if (reason && cap) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, cap, fmt, ap);
    va_end(ap);
  }
  return MSGS_ERR_BAD_BODY;
}

int msgs_decode(const void *body, size_t len, int32_t *resource_id, char *reason, size_t reason_cap) {
  if (!resource_id || (!body && len)) return MSGS_ERR_INVALID;
  if (reason && reason_cap) reason[0] = '\0';
  if (len == 0) return bad(reason, reason_cap, "empty body");
  if (len > MSGS_BODY_MAX) return bad(reason, reason_cap, "body too large: %zu bytes (max %d)", len, MSGS_BODY_MAX);

  json_error_t jerr;
  json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
  if (!root) return bad(reason, reason_cap, "not JSON: %s", jerr.text);
  int rc = MSGS_OK;
  json_t *id = json_object_get(root, "resourceId"); /* NULL when root is no object */
  if (!json_is_object(root))
    rc = bad(reason, reason_cap, "not a JSON object");
  else if (!id)
    rc = bad(reason, reason_cap, "resourceId: missing");
  else if (!json_is_integer(id))
    rc = bad(reason, reason_cap, "resourceId: not an integer");
  else if (json_integer_value(id) < 1 || json_integer_value(id) > INT32_MAX)
    rc = bad(reason, reason_cap, "resourceId: %" JSON_INTEGER_FORMAT " out of range 1..%d", json_integer_value(id),
             INT32_MAX);
  else
    *resource_id = (int32_t)json_integer_value(id);
  json_decref(root);
  return rc;
}
