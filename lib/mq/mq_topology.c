/*
 * mq_topology: the names a topology may use and its declaration on a fresh connection
 * (exchanges, queues with their dead-letter arguments, bindings; the shape is in mq.h).
 */
#include "mq.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "mq_internal.h"
#include "mqconn/mqconn.h"

static int name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
         c == '-' || c == ':';
}

static int valid_name(const char *s) {
  if (!s) return 0;
  size_t n = strlen(s);
  if (n == 0 || n > MQ_NAME_MAX) return 0;
  for (size_t i = 0; i < n; i++)
    if (!name_char(s[i])) return 0;
  return 1;
}

/* Binding keys may be empty (direct/fanout) and, for topic exchanges, hold * and #. */
static int valid_key(const char *s) {
  if (!s) return 1;
  size_t n = strlen(s);
  if (n > MQ_NAME_MAX) return 0;
  for (size_t i = 0; i < n; i++)
    if (s[i] != '*' && s[i] != '#' && !name_char(s[i])) return 0;
  return 1;
}

int mq_topology_validate(const mq_topology *t) {
  if (!t || !valid_name(t->exchange) || !t->exchange_type) return MQ_ERR_INVALID;
  if (strcmp(t->exchange_type, "topic") != 0 && strcmp(t->exchange_type, "direct") != 0 &&
      strcmp(t->exchange_type, "fanout") != 0)
    return MQ_ERR_INVALID;
  if (t->n_queues > 0 && !t->queues) return MQ_ERR_INVALID;
  for (size_t i = 0; i < t->n_queues; i++) {
    const mq_queue_spec *q = &t->queues[i];
    if (!valid_name(q->name) || !valid_key(q->binding_key)) return MQ_ERR_INVALID;
    for (size_t j = 0; j < i; j++)
      if (strcmp(t->queues[j].name, q->name) == 0) return MQ_ERR_INVALID;
  }
  return 0;
}

/* Builds "<a><b>" into a capped buffer; names are validated to fit. */
void mq__suffixed(char *dst, size_t cap, const char *a, const char *b) {
  int n = snprintf(dst, cap, "%s%s", a, b);
  assert(n > 0 && (size_t)n < cap);
  (void)n;
}

amqp_table_entry_t mq__str_entry(const char *key, const char *val) {
  amqp_table_entry_t e;
  e.key = amqp_cstring_bytes(key);
  e.value.kind = AMQP_FIELD_KIND_UTF8;
  e.value.value.bytes = amqp_cstring_bytes(val);
  return e;
}

static int declare_queue(amqp_connection_state_t conn, const char *name, amqp_table_entry_t *args, int nargs,
                         const char *exchange, const char *key) {
  amqp_table_t t = {.num_entries = nargs, .entries = args};
  amqp_queue_declare(conn, MQ_CHANNEL, amqp_cstring_bytes(name), 0, 1, 0, 0, t);
  if (!mqconn_rpc_ok(conn)) return MQ_ERR_PROTOCOL;
  if (!exchange) return 0;
  amqp_queue_bind(conn, MQ_CHANNEL, amqp_cstring_bytes(name), amqp_cstring_bytes(exchange), amqp_cstring_bytes(key),
                  amqp_empty_table);
  return mqconn_rpc_ok(conn) ? 0 : MQ_ERR_PROTOCOL;
}

/* Declares the whole topology (see mq.h for the shape). Idempotent on the broker. */
int mq__declare_topology(amqp_connection_state_t conn, const mq_topology *t) {
  char dlx[MQ_NAME_MAX + 8], aux[MQ_NAME_MAX + 8];
  if (!t) return 0;
  mq__suffixed(dlx, sizeof dlx, t->exchange, ".dlx");
  amqp_exchange_declare(conn, MQ_CHANNEL, amqp_cstring_bytes(t->exchange), amqp_cstring_bytes(t->exchange_type), 0, 1,
                        0, 0, amqp_empty_table);
  if (!mqconn_rpc_ok(conn)) return MQ_ERR_PROTOCOL;
  amqp_exchange_declare(conn, MQ_CHANNEL, amqp_cstring_bytes(dlx), amqp_cstring_bytes("direct"), 0, 1, 0, 0,
                        amqp_empty_table);
  if (!mqconn_rpc_ok(conn)) return MQ_ERR_PROTOCOL;
  for (size_t i = 0; i < t->n_queues; i++) {
    const mq_queue_spec *q = &t->queues[i];
    const char *key = q->binding_key ? q->binding_key : q->name;
    amqp_table_entry_t main_args[2] = {mq__str_entry("x-dead-letter-exchange", dlx),
                                       mq__str_entry("x-dead-letter-routing-key", q->name)};
    if (declare_queue(conn, q->name, main_args, 2, t->exchange, key)) return MQ_ERR_PROTOCOL;
    if (q->dead_letter) {
      mq__suffixed(aux, sizeof aux, q->name, ".dlq");
      if (declare_queue(conn, aux, NULL, 0, dlx, q->name)) return MQ_ERR_PROTOCOL;
    }
    if (q->retry) {
      /* Expired retries go back to Q by name through the default exchange. */
      amqp_table_entry_t retry_args[2] = {mq__str_entry("x-dead-letter-exchange", ""),
                                          mq__str_entry("x-dead-letter-routing-key", q->name)};
      mq__suffixed(aux, sizeof aux, q->name, ".retry");
      if (declare_queue(conn, aux, retry_args, 2, NULL, NULL)) return MQ_ERR_PROTOCOL;
    }
  }
  return 0;
}
