/*
 * mq_consumer: the consumer thread.
 *
 * The consumer's thread loops on amqp_consume_message with a short timeout (so stop is
 * noticed and heartbeats flow), runs the handler, and settles the delivery. Republishing
 * (retry, dead letter with a reason) goes through a private mq_publisher on a second
 * connection, so confirms never interleave with deliveries on the consuming connection.
 */
#include "mq.h"

#include <amqp.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log/log.h"
#include "mq_internal.h"
#include "mqconn/mqconn.h"

#define MQ_MAX_HEADERS 32 /* original headers carried over on republish */
#define MQ_POLL_MS 250    /* how long a consumer waits for a delivery before checking stop */

/* Copies an AMQP byte string into a NUL-terminated, capped buffer (truncating). */
static void copy_bytes(char *dst, size_t cap, amqp_bytes_t b) {
  size_t n = b.len < cap - 1 ? b.len : cap - 1;
  if (n) memcpy(dst, b.bytes, n);
  dst[n] = '\0';
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

mq_verdict mq_retry_decide(const mq_consumer_opts *in, unsigned attempt, uint32_t rnd, uint32_t *delay_ms) {
  mq_consumer_opts o = opts_with_defaults(in);
  if (attempt == 0) attempt = 1;
  if (attempt >= o.max_attempts) return MQ_REJECT;
  *delay_ms = mq_backoff_delay_ms(&o.retry, attempt, rnd);
  return MQ_RETRY;
}

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
  int started; /* touched only by the owner's thread (start/stop/free) */
  atomic_int stop;
  atomic_int connected;
};

mq_consumer *mq_consumer_new(const mq_params *params, const mq_topology *topo, const mq_consumer_opts *opts,
                             mq_handler_fn handler, void *arg) {
  if (!params || !topo || !opts || !opts->queue || !handler || mq_topology_validate(topo) != 0) return NULL;
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
  c->seed = mq__make_seed(c);
  mq__suffixed(c->dlx, sizeof c->dlx, topo->exchange, ".dlx");
  mq__suffixed(c->retry_q, sizeof c->retry_q, q->name, ".retry");
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
  int rc = mqconn_open(&c->params, &c->conn, why);
  if (rc != 0) return rc;
  rc = mq__declare_topology(c->conn, c->topo);
  if (rc == 0) {
    amqp_basic_qos(c->conn, MQ_CHANNEL, 0, c->opts.prefetch, 0);
    if (!mqconn_rpc_ok(c->conn)) rc = MQ_ERR_PROTOCOL;
  }
  if (rc == 0) {
    amqp_basic_consume(c->conn, MQ_CHANNEL, amqp_cstring_bytes(c->queue->name), amqp_empty_bytes, 0, 0, 0,
                       amqp_empty_table);
    if (!mqconn_rpc_ok(c->conn)) rc = MQ_ERR_PROTOCOL;
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
  uint64_t end = mq__now_ms() + ms;
  while (!atomic_load(&c->stop)) {
    uint64_t now = mq__now_ms();
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
  if (v && (v->kind == AMQP_FIELD_KIND_UTF8 || v->kind == AMQP_FIELD_KIND_BYTES)) copy_bytes(dst, cap, v->value.bytes);
}

/* Republishes the delivery with x-attempt / x-reason replaced and an optional TTL, and waits
 * for the confirm. Other headers and the content type and message id are kept. */
static int republish(mq_consumer *c, const amqp_envelope_t *env, const char *exchange, const char *key,
                     unsigned attempt, const char *reason, uint32_t ttl_ms) {
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
      if ((k.len == 9 && memcmp(k.bytes, "x-attempt", 9) == 0) || (k.len == 8 && memcmp(k.bytes, "x-reason", 8) == 0))
        continue;
      h[nh++] = in->headers.entries[i];
    }
  }
  h[nh].key = amqp_cstring_bytes("x-attempt");
  h[nh].value.kind = AMQP_FIELD_KIND_I32;
  h[nh++].value.value.i32 = (int32_t)attempt;
  if (reason) h[nh++] = mq__str_entry("x-reason", reason);
  out.headers = (amqp_table_t){.num_entries = nh, .entries = h};
  if (ttl_ms) {
    snprintf(ttl, sizeof ttl, "%" PRIu32, ttl_ms);
    out._flags |= AMQP_BASIC_EXPIRATION_FLAG;
    out.expiration = amqp_cstring_bytes(ttl);
  }
  return mq__pub_send(c->repub, exchange, key, env->message.body.bytes, env->message.body.len, &out);
}

/* Carries out the handler's verdict. Returns 0, or nonzero when the consuming connection is
 * no longer usable. */
static int settle(mq_consumer *c, const amqp_envelope_t *env, mq_verdict v, unsigned attempt, const char *reason) {
  amqp_connection_state_t conn = c->conn;
  uint64_t tag = env->delivery_tag;
  char why[512];
  uint32_t delay = 0;
  if (v == MQ_RETRY && !c->queue->retry) {
    snprintf(why, sizeof why, "retry not configured: %s", reason);
    return settle(c, env, MQ_REJECT, attempt, why);
  }
  if (v == MQ_RETRY && mq_retry_decide(&c->opts, attempt, mq__next_rand(&c->seed), &delay) == MQ_REJECT) {
    snprintf(why, sizeof why, "max attempts (%u): %s", c->opts.max_attempts, reason);
    return settle(c, env, MQ_REJECT, attempt, why);
  }
  switch (v) {
  case MQ_ACK: return amqp_basic_ack(conn, MQ_CHANNEL, tag, 0);
  case MQ_REQUEUE: return amqp_basic_nack(conn, MQ_CHANNEL, tag, 0, 1);
  case MQ_RETRY:
    if (republish(c, env, "", c->retry_q, attempt + 1, reason[0] ? reason : NULL, delay) != 0) {
      /* The broker is in trouble: let the delivery return to the queue via reconnect. */
      log_event(c->params.log, LOG_LEVEL_WARN, "mq retry republish failed", "queue=%s", c->queue->name);
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
  char rk[256], rid[128], tp[128], ctype[128], reason[256] = "";
  copy_bytes(rk, sizeof rk, env->routing_key);
  header_str(pr, "x-request-id", rid, sizeof rid);
  header_str(pr, "traceparent", tp, sizeof tp);
  ctype[0] = '\0';
  if (pr->_flags & AMQP_BASIC_CONTENT_TYPE_FLAG) copy_bytes(ctype, sizeof ctype, pr->content_type);
  mq_message m = {
      .body = env->message.body.bytes,
      .len = env->message.body.len,
      .routing_key = rk,
      .request_id = rid,
      .traceparent = tp,
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
  struct timeval tv = mq__tv_ms(MQ_POLL_MS);
  if (amqp_simple_wait_frame_noblock(c->conn, &f, &tv) != AMQP_STATUS_OK) return -1;
  if (f.frame_type != AMQP_FRAME_METHOD) return 0;
  switch (f.payload.method.id) {
  case AMQP_CHANNEL_CLOSE_METHOD:
  case AMQP_CONNECTION_CLOSE_METHOD:
  case AMQP_BASIC_CANCEL_METHOD: /* queue deleted: reconnecting redeclares it */ return -1;
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
        uint32_t d = mq_backoff_delay_ms(&c->opts.reconnect, failures, mq__next_rand(&c->seed));
        log_event(c->params.log, failures == 1 ? LOG_LEVEL_WARN : LOG_LEVEL_DEBUG, "mq consumer connect failed",
                  "queue=%s attempt=%u retry_in_ms=%" PRIu32 " tls=%d reason=\"%s\"", c->queue->name, failures, d,
                  c->params.tls, why);
        consumer_sleep(c, d);
        continue;
      }
      log_event(c->params.log, LOG_LEVEL_INFO, "mq consumer connected", "queue=%s prefetch=%u", c->queue->name,
                (unsigned)c->opts.prefetch);
      failures = 0;
    }
    amqp_envelope_t env;
    struct timeval tv = mq__tv_ms(MQ_POLL_MS);
    amqp_maybe_release_buffers(c->conn);
    amqp_rpc_reply_t r = amqp_consume_message(c->conn, &env, &tv, 0);
    int broken = 0;
    if (r.reply_type == AMQP_RESPONSE_NORMAL) {
      broken = consumer_handle(c, &env) != 0;
      amqp_destroy_envelope(&env);
    } else if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION && r.library_error == AMQP_STATUS_TIMEOUT) {
      continue;
    } else if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION && r.library_error == AMQP_STATUS_UNEXPECTED_STATE) {
      broken = consumer_other_frame(c) != 0;
    } else {
      broken = 1;
    }
    if (broken) {
      log_event(c->params.log, LOG_LEVEL_WARN, "mq consumer lost connection", "queue=%s", c->queue->name);
      consumer_drop(c, 0);
      failures = 1;
      consumer_sleep(c, mq_backoff_delay_ms(&c->opts.reconnect, failures, mq__next_rand(&c->seed)));
    }
  }
  consumer_drop(c, 1);
  return NULL;
}

int mq_consumer_start(mq_consumer *c) {
  if (!c || c->started) return MQ_ERR_THREAD;
  atomic_store(&c->stop, 0);
  if (pthread_create(&c->thread, NULL, consumer_main, c) != 0) return MQ_ERR_THREAD;
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
