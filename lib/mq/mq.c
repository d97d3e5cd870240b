/*
 * mq: RabbitMQ publisher (confirms) and consumer (manual acks, reconnect) on rabbitmq-c.
 *
 * Design. rabbitmq-c is a thin, single-threaded protocol library: a connection must stay
 * on one thread, heartbeats are serviced only while we are inside a library call, and any
 * library error leaves the connection in an unknown state. So every object here owns its
 * connections outright, uses channel 1 only, and on any error does the one thing that is
 * always safe: destroy the connection and build a new one later (after a backoff). No
 * attempt is made to resynchronise a connection that saw an error.
 *
 * Publishing is synchronous: publish, then read frames until the broker's basic.ack or
 * basic.nack for that delivery tag arrives (basic.return first if the message was
 * unroutable, because we publish with mandatory set). One message in flight per
 * publisher keeps the delivery-tag bookkeeping trivial; the outbox relay this serves is
 * limited by the database round trips anyway.
 *
 * The consumer's thread loops on amqp_consume_message with a short timeout (so stop is
 * noticed and heartbeats flow), runs the handler, and settles the delivery. Republishing
 * (retry, dead letter with a reason) goes through a private mq_publisher on a second
 * connection, so confirms never interleave with deliveries on the consuming connection.
 */
#include "mq.h"

#include <amqp.h>
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "mqconn.h"

#define MQ_CHANNEL MQCONN_CHANNEL
#define MQ_MAX_HEADERS 32 /* original headers carried over on republish */
#define MQ_POLL_MS 250    /* how long a consumer waits for a delivery before checking stop */

const char *mq_strerror(int err) {
  switch (err) {
  case MQ_OK: return "ok";
  case MQ_EINVAL: return "invalid argument";
  case MQ_ENOMEM: return "out of memory";
  case MQ_EDOWN: return "broker unreachable";
  case MQ_EPROTO: return "broker closed the channel or connection";
  case MQ_ETIMEDOUT: return "no publisher confirm in time";
  case MQ_ENACK: return "broker nacked the message";
  case MQ_EUNROUTABLE: return "message reached no queue";
  case MQ_ETHREAD: return "consumer thread error";
  default: return "unknown error";
  }
}

/* ---------------------------------------------------------------- small helpers */

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static struct timeval tv_ms(uint64_t ms) {
  struct timeval tv = {.tv_sec = (time_t)(ms / 1000), .tv_usec = (suseconds_t)(ms % 1000) * 1000};
  return tv;
}

/* Per-object random stream (no global rand state). */
static uint32_t next_rand(unsigned *seed) { return (uint32_t)rand_r(seed); }

static unsigned make_seed(const void *obj) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (unsigned)ts.tv_nsec ^ (unsigned)(uintptr_t)obj;
}

/* Copies an AMQP byte string into a NUL-terminated, capped buffer (truncating). */
static void copy_bytes(char *dst, size_t cap, amqp_bytes_t b) {
  size_t n = b.len < cap - 1 ? b.len : cap - 1;
  if (n) memcpy(dst, b.bytes, n);
  dst[n] = '\0';
}

/* ---------------------------------------------------------------- params, topology */

/* Parameters are lib/mqconn's; so are these. */
int mq_params_from_url(const char *url, mq_params *out) { return mqconn_params_from_url(url, out); }
int mq_params_set_ca_file(mq_params *p, const char *path) { return mqconn_set_ca_file(p, path); }
int mq_params_set_password(mq_params *p, const char *pw) { return mqconn_set_password(p, pw); }

static int name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-' || c == ':';
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
  if (!t || !valid_name(t->exchange) || !t->exchange_type) return MQ_EINVAL;
  if (strcmp(t->exchange_type, "topic") != 0 && strcmp(t->exchange_type, "direct") != 0 &&
      strcmp(t->exchange_type, "fanout") != 0)
    return MQ_EINVAL;
  if (t->n_queues > 0 && !t->queues) return MQ_EINVAL;
  for (size_t i = 0; i < t->n_queues; i++) {
    const mq_queue_spec *q = &t->queues[i];
    if (!valid_name(q->name) || !valid_key(q->binding_key)) return MQ_EINVAL;
    for (size_t j = 0; j < i; j++)
      if (strcmp(t->queues[j].name, q->name) == 0) return MQ_EINVAL;
  }
  return 0;
}

uint32_t mq_backoff_delay_ms(const mq_backoff *b, unsigned attempt, uint32_t rnd) {
  uint64_t d = b->base_ms ? b->base_ms : 1;
  for (unsigned i = 1; i < attempt && d < b->max_ms; i++) d *= 2;
  if (b->max_ms && d > b->max_ms) d = b->max_ms;
  uint64_t half = d / 2;
  return (uint32_t)(half + rnd % (d - half + 1));
}

static mq_consumer_opts opts_with_defaults(const mq_consumer_opts *in) {
  mq_consumer_opts o = *in;
  if (o.prefetch == 0) o.prefetch = 1;
  if (o.max_attempts == 0) o.max_attempts = 5;
  if (o.retry.base_ms == 0) o.retry = (mq_backoff){1000, 60000};
  if (o.retry.max_ms < o.retry.base_ms) o.retry.max_ms = o.retry.base_ms;
  if (o.reconnect.base_ms == 0) o.reconnect = (mq_backoff){200, 5000};
  if (o.reconnect.max_ms < o.reconnect.base_ms) o.reconnect.max_ms = o.reconnect.base_ms;
  return o;
}

mq_verdict mq_retry_decide(const mq_consumer_opts *in, unsigned attempt, uint32_t rnd,
                           uint32_t *delay_ms) {
  mq_consumer_opts o = opts_with_defaults(in);
  if (attempt == 0) attempt = 1;
  if (attempt >= o.max_attempts) return MQ_REJECT;
  *delay_ms = mq_backoff_delay_ms(&o.retry, attempt, rnd);
  return MQ_RETRY;
}

/* ---------------------------------------------------------------- connections */

/* lib/mqconn opens the connections; its codes are ours. */
_Static_assert((int)MQCONN_EINVAL == (int)MQ_EINVAL && (int)MQCONN_ENOMEM == (int)MQ_ENOMEM &&
                   (int)MQCONN_EDOWN == (int)MQ_EDOWN,
               "codes");
#define conn_open mqconn_open

/* Builds "<a><b>" into a capped buffer; names are validated to fit. */
static void suffixed(char *dst, size_t cap, const char *a, const char *b) {
  int n = snprintf(dst, cap, "%s%s", a, b);
  assert(n > 0 && (size_t)n < cap);
  (void)n;
}

static amqp_table_entry_t str_entry(const char *key, const char *val) {
  amqp_table_entry_t e;
  e.key = amqp_cstring_bytes(key);
  e.value.kind = AMQP_FIELD_KIND_UTF8;
  e.value.value.bytes = amqp_cstring_bytes(val);
  return e;
}

static int declare_queue(amqp_connection_state_t conn, const char *name, amqp_table_entry_t *args,
                         int nargs, const char *exchange, const char *key) {
  amqp_table_t t = {.num_entries = nargs, .entries = args};
  amqp_queue_declare(conn, MQ_CHANNEL, amqp_cstring_bytes(name), 0, 1, 0, 0, t);
  if (!mqconn_rpc_ok(conn)) return MQ_EPROTO;
  if (!exchange) return 0;
  amqp_queue_bind(conn, MQ_CHANNEL, amqp_cstring_bytes(name), amqp_cstring_bytes(exchange),
                  amqp_cstring_bytes(key), amqp_empty_table);
  return mqconn_rpc_ok(conn) ? 0 : MQ_EPROTO;
}

/* Declares the whole topology (see mq.h for the shape). Idempotent on the broker. */
static int declare_topology(amqp_connection_state_t conn, const mq_topology *t) {
  char dlx[MQ_NAME_MAX + 8], aux[MQ_NAME_MAX + 8];
  if (!t) return 0;
  suffixed(dlx, sizeof dlx, t->exchange, ".dlx");
  amqp_exchange_declare(conn, MQ_CHANNEL, amqp_cstring_bytes(t->exchange),
                        amqp_cstring_bytes(t->exchange_type), 0, 1, 0, 0, amqp_empty_table);
  if (!mqconn_rpc_ok(conn)) return MQ_EPROTO;
  amqp_exchange_declare(conn, MQ_CHANNEL, amqp_cstring_bytes(dlx), amqp_cstring_bytes("direct"), 0,
                        1, 0, 0, amqp_empty_table);
  if (!mqconn_rpc_ok(conn)) return MQ_EPROTO;
  for (size_t i = 0; i < t->n_queues; i++) {
    const mq_queue_spec *q = &t->queues[i];
    const char *key = q->binding_key ? q->binding_key : q->name;
    amqp_table_entry_t main_args[2] = {str_entry("x-dead-letter-exchange", dlx),
                                       str_entry("x-dead-letter-routing-key", q->name)};
    if (declare_queue(conn, q->name, main_args, 2, t->exchange, key)) return MQ_EPROTO;
    if (q->dead_letter) {
      suffixed(aux, sizeof aux, q->name, ".dlq");
      if (declare_queue(conn, aux, NULL, 0, dlx, q->name)) return MQ_EPROTO;
    }
    if (q->retry) {
      /* Expired retries go back to Q by name through the default exchange. */
      amqp_table_entry_t retry_args[2] = {str_entry("x-dead-letter-exchange", ""),
                                          str_entry("x-dead-letter-routing-key", q->name)};
      suffixed(aux, sizeof aux, q->name, ".retry");
      if (declare_queue(conn, aux, retry_args, 2, NULL, NULL)) return MQ_EPROTO;
    }
  }
  return 0;
}

/* ---------------------------------------------------------------- publisher */

struct mq_publisher {
  mq_params params;
  const mq_topology *topo;
  mq_backoff reconnect;
  amqp_connection_state_t conn; /* NULL while disconnected */
  uint64_t seq;                 /* delivery tag of the last publish on conn */
  unsigned failures;            /* consecutive connection failures */
  uint64_t next_try_ms;         /* no reconnect before this (monotonic) */
  unsigned seed;
};

mq_publisher *mq_publisher_new(const mq_params *params, const mq_topology *topo,
                               const mq_backoff *reconnect) {
  if (!params || (topo && mq_topology_validate(topo) != 0)) return NULL;
  mq_publisher *p = calloc(1, sizeof *p);
  if (!p) return NULL;
  p->params = *params;
  p->topo = topo;
  p->reconnect = reconnect && reconnect->base_ms ? *reconnect : (mq_backoff){200, 5000};
  p->seed = make_seed(p);
  return p;
}

void mq_publisher_free(mq_publisher *p) {
  if (!p) return;
  mqconn_drop(&p->conn, 1);
  free(p);
}

int mq_publisher_connected(const mq_publisher *p) { return p && p->conn != NULL; }

static void pub_fail(mq_publisher *p, int healthy) {
  mqconn_drop(&p->conn, healthy);
  p->failures++;
  p->next_try_ms = now_ms() + mq_backoff_delay_ms(&p->reconnect, p->failures, next_rand(&p->seed));
}

/* An idle publisher services no heartbeats, so the broker may have closed its connection
 * (missed heartbeats, restart): find that before publishing on it (mqconn_drain_idle). A
 * stale connection is not a failure: it is replaced at once, without backoff. */
static void pub_drain_idle(mq_publisher *p) {
  if (mqconn_drain_idle(p->conn) == 0) return;
  log_event(p->params.log, LOG_INFO, "mq publisher connection went stale; reconnecting", NULL);
  mqconn_drop(&p->conn, 0);
}

static int pub_connect(mq_publisher *p) {
  if (p->conn) pub_drain_idle(p);
  if (p->conn) return 0;
  if (now_ms() < p->next_try_ms) return MQ_EDOWN;
  const char *why = "declare failed";
  int rc = conn_open(&p->params, &p->conn, &why);
  if (rc == 0) {
    amqp_confirm_select(p->conn, MQ_CHANNEL);
    rc = mqconn_rpc_ok(p->conn) ? declare_topology(p->conn, p->topo) : MQ_EPROTO;
  }
  if (rc != 0) {
    log_event(p->params.log, LOG_WARN, "mq publisher connect failed", "host=%s port=%d tls=%d err=%d reason=\"%s\"",
              p->params.host, p->params.port, p->params.tls, rc, why);
    pub_fail(p, 0);
    return rc == MQ_ENOMEM ? rc : MQ_EDOWN;
  }
  if (p->failures) log_event(p->params.log, LOG_INFO, "mq publisher reconnected", NULL);
  p->seq = 0;
  p->failures = 0;
  return 0;
}

int mq_publisher_connect(mq_publisher *p) { return p ? pub_connect(p) : MQ_EINVAL; }

/* Reads frames until the confirm for p->seq. Returns 0, MQ_ENACK, MQ_EUNROUTABLE (connection
 * still fine) or MQ_ETIMEDOUT / MQ_EPROTO / MQ_EDOWN (connection must go). */
static int pub_wait_confirm(mq_publisher *p) {
  uint64_t deadline = now_ms() + (uint64_t)p->params.rpc_timeout_ms;
  int returned = 0;
  for (;;) {
    uint64_t now = now_ms();
    if (now >= deadline) return MQ_ETIMEDOUT;
    struct timeval tv = tv_ms(deadline - now);
    amqp_frame_t f;
    int rc = amqp_simple_wait_frame_noblock(p->conn, &f, &tv);
    if (rc == AMQP_STATUS_TIMEOUT) return MQ_ETIMEDOUT;
    if (rc != AMQP_STATUS_OK) return MQ_EDOWN;
    if (f.frame_type != AMQP_FRAME_METHOD) continue;
    switch (f.payload.method.id) {
    case AMQP_BASIC_ACK_METHOD: {
      const amqp_basic_ack_t *a = f.payload.method.decoded;
      if (a->delivery_tag == p->seq || (a->multiple && a->delivery_tag > p->seq))
        return returned ? MQ_EUNROUTABLE : 0;
      break;
    }
    case AMQP_BASIC_NACK_METHOD: {
      const amqp_basic_nack_t *n = f.payload.method.decoded;
      if (n->delivery_tag == p->seq || (n->multiple && n->delivery_tag > p->seq)) return MQ_ENACK;
      break;
    }
    case AMQP_BASIC_RETURN_METHOD: {
      /* The returned message's header and body follow: read them off the wire. */
      amqp_message_t m;
      amqp_rpc_reply_t r = amqp_read_message(p->conn, f.channel, &m, 0);
      if (r.reply_type != AMQP_RESPONSE_NORMAL) return MQ_EDOWN;
      amqp_destroy_message(&m);
      returned = 1;
      break;
    }
    case AMQP_CHANNEL_CLOSE_METHOD:
    case AMQP_CONNECTION_CLOSE_METHOD: return MQ_EPROTO;
    default: break;
    }
  }
}

/* Publishes with ready-made properties; shared by mq_publish and the consumer's
 * republishing. */
static int pub_send(mq_publisher *p, const char *exchange, const char *routing_key,
                    const void *body, size_t len, const amqp_basic_properties_t *props) {
  int rc = pub_connect(p);
  if (rc != 0) return rc;
  amqp_bytes_t b = {.len = len, .bytes = (void *)body};
  rc = amqp_basic_publish(p->conn, MQ_CHANNEL, amqp_cstring_bytes(exchange),
                          amqp_cstring_bytes(routing_key), 1, 0, props, b);
  if (rc != AMQP_STATUS_OK) {
    pub_fail(p, 0);
    return MQ_EDOWN;
  }
  p->seq++;
  rc = pub_wait_confirm(p);
  if (rc == MQ_ETIMEDOUT || rc == MQ_EPROTO || rc == MQ_EDOWN) {
    log_event(p->params.log, LOG_WARN, "mq publish failed", "exchange=%s key=%s err=%d", exchange,
              routing_key, rc);
    pub_fail(p, 0);
  }
  if (p->conn) amqp_maybe_release_buffers(p->conn);
  return rc;
}

int mq_publish(mq_publisher *p, const char *exchange, const char *routing_key,
               const void *body, size_t len, const mq_publish_opts *opts) {
  if (!p || !exchange || !routing_key || (!body && len)) return MQ_EINVAL;
  if (strlen(exchange) > MQ_NAME_MAX || strlen(routing_key) > 255) return MQ_EINVAL;
  mq_publish_opts o = opts ? *opts : (mq_publish_opts){0};
  amqp_basic_properties_t props = {0};
  amqp_table_entry_t h[2];
  int nh = 0;
  props._flags = AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_CONTENT_TYPE_FLAG;
  props.delivery_mode = 2; /* persistent */
  props.content_type = amqp_cstring_bytes(o.content_type ? o.content_type : "application/json");
  if (o.message_id) {
    props._flags |= AMQP_BASIC_MESSAGE_ID_FLAG;
    props.message_id = amqp_cstring_bytes(o.message_id);
  }
  if (o.request_id) h[nh++] = str_entry("x-request-id", o.request_id);
  if (o.attempt > 0) {
    h[nh].key = amqp_cstring_bytes("x-attempt");
    h[nh].value.kind = AMQP_FIELD_KIND_I32;
    h[nh++].value.value.i32 = o.attempt;
  }
  if (nh) {
    props._flags |= AMQP_BASIC_HEADERS_FLAG;
    props.headers = (amqp_table_t){.num_entries = nh, .entries = h};
  }
  return pub_send(p, exchange, routing_key, body, len, &props);
}

/* ---------------------------------------------------------------- consumer */

struct mq_consumer {
  mq_params params;
  const mq_topology *topo;
  const mq_queue_spec *queue;
  mq_consumer_opts opts;
  mq_handler_fn handler;
  void *arg;
  amqp_connection_state_t conn;
  mq_publisher *repub; /* confirmed republishing to Q.retry / X.dlx */
  char dlx[MQ_NAME_MAX + 8];
  char retry_q[MQ_NAME_MAX + 8];
  unsigned seed;
  pthread_t thread;
  int started;       /* touched only by the owner's thread (start/stop/free) */
  atomic_int stop;
  atomic_int connected;
};

mq_consumer *mq_consumer_new(const mq_params *params, const mq_topology *topo,
                             const mq_consumer_opts *opts, mq_handler_fn handler, void *arg) {
  if (!params || !topo || !opts || !opts->queue || !handler || mq_topology_validate(topo) != 0)
    return NULL;
  const mq_queue_spec *q = NULL;
  for (size_t i = 0; i < topo->n_queues; i++)
    if (strcmp(topo->queues[i].name, opts->queue) == 0) q = &topo->queues[i];
  if (!q) return NULL;
  mq_consumer *c = calloc(1, sizeof *c);
  if (!c) return NULL;
  c->params = *params;
  c->topo = topo;
  c->queue = q;
  c->opts = opts_with_defaults(opts);
  c->opts.queue = q->name; /* the caller's string may not outlive us */
  c->handler = handler;
  c->arg = arg;
  c->seed = make_seed(c);
  suffixed(c->dlx, sizeof c->dlx, topo->exchange, ".dlx");
  suffixed(c->retry_q, sizeof c->retry_q, q->name, ".retry");
  c->repub = mq_publisher_new(params, topo, &c->opts.reconnect);
  if (!c->repub) {
    free(c);
    return NULL;
  }
  atomic_init(&c->stop, 0);
  atomic_init(&c->connected, 0);
  return c;
}

int mq_consumer_connected(mq_consumer *c) { return c && atomic_load(&c->connected); }

static void consumer_drop(mq_consumer *c, int healthy) {
  atomic_store(&c->connected, 0);
  mqconn_drop(&c->conn, healthy);
}

static int consumer_connect(mq_consumer *c, const char **why) {
  *why = "declare, qos or consume failed";
  int rc = conn_open(&c->params, &c->conn, why);
  if (rc != 0) return rc;
  rc = declare_topology(c->conn, c->topo);
  if (rc == 0) {
    amqp_basic_qos(c->conn, MQ_CHANNEL, 0, c->opts.prefetch, 0);
    if (!mqconn_rpc_ok(c->conn)) rc = MQ_EPROTO;
  }
  if (rc == 0) {
    amqp_basic_consume(c->conn, MQ_CHANNEL, amqp_cstring_bytes(c->queue->name), amqp_empty_bytes,
                       0, 0, 0, amqp_empty_table);
    if (!mqconn_rpc_ok(c->conn)) rc = MQ_EPROTO;
  }
  if (rc != 0) {
    consumer_drop(c, 0);
    return rc;
  }
  atomic_store(&c->connected, 1);
  return 0;
}

/* Sleeps ms in slices, returning early when asked to stop. */
static void consumer_sleep(mq_consumer *c, uint32_t ms) {
  uint64_t end = now_ms() + ms;
  while (!atomic_load(&c->stop)) {
    uint64_t now = now_ms();
    if (now >= end) return;
    uint64_t slice = end - now < 100 ? end - now : 100;
    struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)slice * 1000000L};
    nanosleep(&ts, NULL);
  }
}

static const amqp_field_value_t *header_find(const amqp_basic_properties_t *pr, const char *key) {
  if (!(pr->_flags & AMQP_BASIC_HEADERS_FLAG)) return NULL;
  size_t kl = strlen(key);
  for (int i = 0; i < pr->headers.num_entries; i++) {
    const amqp_table_entry_t *e = &pr->headers.entries[i];
    if (e->key.len == kl && memcmp(e->key.bytes, key, kl) == 0) return &e->value;
  }
  return NULL;
}

/* x-attempt as any integer kind (pika and other clients pick different widths). */
static unsigned header_attempt(const amqp_basic_properties_t *pr) {
  const amqp_field_value_t *v = header_find(pr, "x-attempt");
  int64_t n = 0;
  if (!v) return 1;
  switch (v->kind) {
  case AMQP_FIELD_KIND_I8: n = v->value.i8; break;
  case AMQP_FIELD_KIND_U8: n = v->value.u8; break;
  case AMQP_FIELD_KIND_I16: n = v->value.i16; break;
  case AMQP_FIELD_KIND_U16: n = v->value.u16; break;
  case AMQP_FIELD_KIND_I32: n = v->value.i32; break;
  case AMQP_FIELD_KIND_U32: n = v->value.u32; break;
  case AMQP_FIELD_KIND_I64: n = v->value.i64; break;
  case AMQP_FIELD_KIND_U64: n = v->value.u64 > 1000000 ? 1000000 : (int64_t)v->value.u64; break;
  default: return 1;
  }
  if (n < 1) return 1;
  return n > 1000000 ? 1000000u : (unsigned)n;
}

static void header_str(const amqp_basic_properties_t *pr, const char *key, char *dst, size_t cap) {
  const amqp_field_value_t *v = header_find(pr, key);
  dst[0] = '\0';
  if (v && (v->kind == AMQP_FIELD_KIND_UTF8 || v->kind == AMQP_FIELD_KIND_BYTES))
    copy_bytes(dst, cap, v->value.bytes);
}

/* Republishes the delivery with x-attempt / x-reason replaced and an optional TTL, and waits
 * for the confirm. Other headers and the content type and message id are kept. */
static int republish(mq_consumer *c, const amqp_envelope_t *env, const char *exchange,
                     const char *key, unsigned attempt, const char *reason, uint32_t ttl_ms) {
  const amqp_basic_properties_t *in = &env->message.properties;
  amqp_basic_properties_t out = {0};
  amqp_table_entry_t h[MQ_MAX_HEADERS + 2];
  int nh = 0;
  char ttl[16];
  out._flags = AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_HEADERS_FLAG;
  out.delivery_mode = 2;
  if (in->_flags & AMQP_BASIC_CONTENT_TYPE_FLAG) {
    out._flags |= AMQP_BASIC_CONTENT_TYPE_FLAG;
    out.content_type = in->content_type;
  }
  if (in->_flags & AMQP_BASIC_MESSAGE_ID_FLAG) {
    out._flags |= AMQP_BASIC_MESSAGE_ID_FLAG;
    out.message_id = in->message_id;
  }
  if (in->_flags & AMQP_BASIC_HEADERS_FLAG) {
    for (int i = 0; i < in->headers.num_entries && nh < MQ_MAX_HEADERS; i++) {
      amqp_bytes_t k = in->headers.entries[i].key;
      if ((k.len == 9 && memcmp(k.bytes, "x-attempt", 9) == 0) ||
          (k.len == 8 && memcmp(k.bytes, "x-reason", 8) == 0))
        continue;
      h[nh++] = in->headers.entries[i];
    }
  }
  h[nh].key = amqp_cstring_bytes("x-attempt");
  h[nh].value.kind = AMQP_FIELD_KIND_I32;
  h[nh++].value.value.i32 = (int32_t)attempt;
  if (reason) h[nh++] = str_entry("x-reason", reason);
  out.headers = (amqp_table_t){.num_entries = nh, .entries = h};
  if (ttl_ms) {
    snprintf(ttl, sizeof ttl, "%" PRIu32, ttl_ms);
    out._flags |= AMQP_BASIC_EXPIRATION_FLAG;
    out.expiration = amqp_cstring_bytes(ttl);
  }
  return pub_send(c->repub, exchange, key, env->message.body.bytes, env->message.body.len, &out);
}

/* Carries out the handler's verdict. Returns 0, or nonzero when the consuming connection is
 * no longer usable. */
static int settle(mq_consumer *c, const amqp_envelope_t *env, mq_verdict v, unsigned attempt,
                  const char *reason) {
  amqp_connection_state_t conn = c->conn;
  uint64_t tag = env->delivery_tag;
  char why[512];
  uint32_t delay = 0;
  if (v == MQ_RETRY && !c->queue->retry) {
    snprintf(why, sizeof why, "retry not configured: %s", reason);
    return settle(c, env, MQ_REJECT, attempt, why);
  }
  if (v == MQ_RETRY && mq_retry_decide(&c->opts, attempt, next_rand(&c->seed), &delay) == MQ_REJECT) {
    snprintf(why, sizeof why, "max attempts (%u): %s", c->opts.max_attempts, reason);
    return settle(c, env, MQ_REJECT, attempt, why);
  }
  switch (v) {
  case MQ_ACK: return amqp_basic_ack(conn, MQ_CHANNEL, tag, 0);
  case MQ_REQUEUE: return amqp_basic_nack(conn, MQ_CHANNEL, tag, 0, 1);
  case MQ_RETRY:
    if (republish(c, env, "", c->retry_q, attempt + 1, reason[0] ? reason : NULL, delay) != 0) {
      /* The broker is in trouble: let the delivery return to the queue via reconnect. */
      log_event(c->params.log, LOG_WARN, "mq retry republish failed", "queue=%s", c->queue->name);
      return -1;
    }
    return amqp_basic_ack(conn, MQ_CHANNEL, tag, 0);
  case MQ_REJECT:
    if (c->queue->dead_letter &&
        republish(c, env, c->dlx, c->queue->name, attempt, reason[0] ? reason : "rejected", 0) == 0)
      return amqp_basic_ack(conn, MQ_CHANNEL, tag, 0);
    /* Native dead-lettering (x-death, reason "rejected") is the fallback. */
    return amqp_basic_reject(conn, MQ_CHANNEL, tag, 0);
  }
  return -1;
}

static int consumer_handle(mq_consumer *c, const amqp_envelope_t *env) {
  const amqp_basic_properties_t *pr = &env->message.properties;
  char rk[256], rid[128], ctype[128], reason[256] = "";
  copy_bytes(rk, sizeof rk, env->routing_key);
  header_str(pr, "x-request-id", rid, sizeof rid);
  ctype[0] = '\0';
  if (pr->_flags & AMQP_BASIC_CONTENT_TYPE_FLAG) copy_bytes(ctype, sizeof ctype, pr->content_type);
  mq_message m = {
      .body = env->message.body.bytes,
      .len = env->message.body.len,
      .routing_key = rk,
      .request_id = rid,
      .content_type = ctype,
      .attempt = header_attempt(pr),
      .redelivered = env->redelivered != 0,
  };
  mq_verdict v = c->handler(&m, c->arg, reason, sizeof reason);
  reason[sizeof reason - 1] = '\0';
  return settle(c, env, v, m.attempt, reason);
}

/* Reads the frame amqp_consume_message stopped at. Returns 0 if it is harmless. */
static int consumer_other_frame(mq_consumer *c) {
  amqp_frame_t f;
  struct timeval tv = tv_ms(MQ_POLL_MS);
  if (amqp_simple_wait_frame_noblock(c->conn, &f, &tv) != AMQP_STATUS_OK) return -1;
  if (f.frame_type != AMQP_FRAME_METHOD) return 0;
  switch (f.payload.method.id) {
  case AMQP_CHANNEL_CLOSE_METHOD:
  case AMQP_CONNECTION_CLOSE_METHOD:
  case AMQP_BASIC_CANCEL_METHOD: /* queue deleted: reconnecting redeclares it */
    return -1;
  default: return 0;
  }
}

static void *consumer_main(void *arg) {
  mq_consumer *c = arg;
  unsigned failures = 0;
  while (!atomic_load(&c->stop)) {
    if (!c->conn) {
      const char *why;
      if (consumer_connect(c, &why) != 0) {
        failures++;
        uint32_t d = mq_backoff_delay_ms(&c->opts.reconnect, failures, next_rand(&c->seed));
        log_event(c->params.log, failures == 1 ? LOG_WARN : LOG_DEBUG, "mq consumer connect failed",
                  "queue=%s attempt=%u retry_in_ms=%" PRIu32 " tls=%d reason=\"%s\"", c->queue->name, failures, d,
                  c->params.tls, why);
        consumer_sleep(c, d);
        continue;
      }
      log_event(c->params.log, LOG_INFO, "mq consumer connected", "queue=%s prefetch=%u",
                c->queue->name, (unsigned)c->opts.prefetch);
      failures = 0;
    }
    amqp_envelope_t env;
    struct timeval tv = tv_ms(MQ_POLL_MS);
    amqp_maybe_release_buffers(c->conn);
    amqp_rpc_reply_t r = amqp_consume_message(c->conn, &env, &tv, 0);
    int broken = 0;
    if (r.reply_type == AMQP_RESPONSE_NORMAL) {
      broken = consumer_handle(c, &env) != 0;
      amqp_destroy_envelope(&env);
    } else if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
               r.library_error == AMQP_STATUS_TIMEOUT) {
      continue;
    } else if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
               r.library_error == AMQP_STATUS_UNEXPECTED_STATE) {
      broken = consumer_other_frame(c) != 0;
    } else {
      broken = 1;
    }
    if (broken) {
      log_event(c->params.log, LOG_WARN, "mq consumer lost connection", "queue=%s", c->queue->name);
      consumer_drop(c, 0);
      failures = 1;
      consumer_sleep(c, mq_backoff_delay_ms(&c->opts.reconnect, failures, next_rand(&c->seed)));
    }
  }
  consumer_drop(c, 1);
  return NULL;
}

int mq_consumer_start(mq_consumer *c) {
  if (!c || c->started) return MQ_ETHREAD;
  atomic_store(&c->stop, 0);
  if (pthread_create(&c->thread, NULL, consumer_main, c) != 0) return MQ_ETHREAD;
  c->started = 1;
  return 0;
}

void mq_consumer_stop(mq_consumer *c) {
  if (!c || !c->started) return;
  atomic_store(&c->stop, 1);
  pthread_join(c->thread, NULL);
  c->started = 0;
}

void mq_consumer_free(mq_consumer *c) {
  if (!c) return;
  mq_consumer_stop(c);
  mq_publisher_free(c->repub);
  free(c);
}
