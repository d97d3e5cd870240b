/*
 * mq_publish: the publisher.
 *
 * Publishing is synchronous: publish, then read frames until the broker's basic.ack or
 * basic.nack for that delivery tag arrives (basic.return first if the message was
 * unroutable, because we publish with mandatory set). One message in flight per
 * publisher keeps the delivery-tag bookkeeping trivial; the outbox relay this serves is
 * limited by the database round trips anyway.
 *
 * After a failure the connection is dropped; the next call reconnects once the reconnect
 * backoff has passed.
 */
#include "mq.h"

#include <amqp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "log/log.h"
#include "mq_internal.h"
#include "mqconn/mqconn.h"

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

mq_publisher *mq_publisher_new(const mq_params *params, const mq_topology *topo, const mq_backoff *reconnect) {
  if (!params || (topo && mq_topology_validate(topo) != 0)) return NULL;
  mq_publisher *p = calloc(1, sizeof *p);
  if (!p) return NULL;
  p->params = *params;
  p->topo = topo;
  p->reconnect = reconnect && reconnect->base_ms ? *reconnect : (mq_backoff){200, 5000};
  p->seed = mq__make_seed(p);
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
  p->next_try_ms = mq__now_ms() + mq_backoff_delay_ms(&p->reconnect, p->failures, mq__next_rand(&p->seed));
}

/* An idle publisher services no heartbeats, so the broker may have closed its connection
 * (missed heartbeats, restart): find that before publishing on it (mqconn_drain_idle). A
 * stale connection is not a failure: it is replaced at once, without backoff. */
static void pub_drain_idle(mq_publisher *p) {
  if (mqconn_drain_idle(p->conn) == 0) return;
  log_event(p->params.log, LOG_LEVEL_INFO, "mq publisher connection went stale; reconnecting", NULL);
  mqconn_drop(&p->conn, 0);
}

static int pub_connect(mq_publisher *p) {
  if (p->conn) pub_drain_idle(p);
  if (p->conn) return 0;
  if (mq__now_ms() < p->next_try_ms) return MQ_ERR_DOWN;
  const char *why = "declare failed";
  int rc = mqconn_open(&p->params, &p->conn, &why);
  if (rc == 0) {
    amqp_confirm_select(p->conn, MQ_CHANNEL);
    rc = mqconn_rpc_ok(p->conn) ? mq__declare_topology(p->conn, p->topo) : MQ_ERR_PROTOCOL;
  }
  if (rc != 0) {
    log_event(p->params.log, LOG_LEVEL_WARN, "mq publisher connect failed",
              "host=%s port=%d tls=%d err=%d reason=\"%s\"", p->params.host, p->params.port, p->params.tls, rc, why);
    pub_fail(p, 0);
    return rc == MQ_ERR_NOMEM ? rc : MQ_ERR_DOWN;
  }
  if (p->failures) log_event(p->params.log, LOG_LEVEL_INFO, "mq publisher reconnected", NULL);
  p->seq = 0;
  p->failures = 0;
  return 0;
}

int mq_publisher_connect(mq_publisher *p) { return p ? pub_connect(p) : MQ_ERR_INVALID; }

/* Reads frames until the confirm for p->seq. Returns 0, MQ_ERR_NACK, MQ_ERR_UNROUTABLE (connection
 * still fine) or MQ_ERR_TIMEOUT / MQ_ERR_PROTOCOL / MQ_ERR_DOWN (connection must go). */
static int pub_wait_confirm(mq_publisher *p) {
  uint64_t deadline = mq__now_ms() + (uint64_t)p->params.rpc_timeout_ms;
  int returned = 0;
  for (;;) {
    uint64_t now = mq__now_ms();
    if (now >= deadline) return MQ_ERR_TIMEOUT;
    struct timeval tv = mq__tv_ms(deadline - now);
    amqp_frame_t f;
    int rc = amqp_simple_wait_frame_noblock(p->conn, &f, &tv);
    if (rc == AMQP_STATUS_TIMEOUT) return MQ_ERR_TIMEOUT;
    if (rc != AMQP_STATUS_OK) return MQ_ERR_DOWN;
    if (f.frame_type != AMQP_FRAME_METHOD) continue;
    switch (f.payload.method.id) {
    case AMQP_BASIC_ACK_METHOD: {
      const amqp_basic_ack_t *a = f.payload.method.decoded;
      if (a->delivery_tag == p->seq || (a->multiple && a->delivery_tag > p->seq))
        return returned ? MQ_ERR_UNROUTABLE : 0;
      break;
    }
    case AMQP_BASIC_NACK_METHOD: {
      const amqp_basic_nack_t *n = f.payload.method.decoded;
      if (n->delivery_tag == p->seq || (n->multiple && n->delivery_tag > p->seq)) return MQ_ERR_NACK;
      break;
    }
    case AMQP_BASIC_RETURN_METHOD: {
      /* The returned message's header and body follow: read them off the wire. */
      amqp_message_t m;
      amqp_rpc_reply_t r = amqp_read_message(p->conn, f.channel, &m, 0);
      if (r.reply_type != AMQP_RESPONSE_NORMAL) return MQ_ERR_DOWN;
      amqp_destroy_message(&m);
      returned = 1;
      break;
    }
    case AMQP_CHANNEL_CLOSE_METHOD:
    case AMQP_CONNECTION_CLOSE_METHOD: return MQ_ERR_PROTOCOL;
    default: break;
    }
  }
}

/* Publishes with ready-made properties; shared by mq_publish and the consumer's
 * republishing. */
int mq__pub_send(mq_publisher *p, const char *exchange, const char *routing_key, const void *body, size_t len,
                 const amqp_basic_properties_t *props) {
  int rc = pub_connect(p);
  if (rc != 0) return rc;
  amqp_bytes_t b = {.len = len, .bytes = (void *)body};
  rc = amqp_basic_publish(p->conn, MQ_CHANNEL, amqp_cstring_bytes(exchange), amqp_cstring_bytes(routing_key), 1, 0,
                          props, b);
  if (rc != AMQP_STATUS_OK) {
    pub_fail(p, 0);
    return MQ_ERR_DOWN;
  }
  p->seq++;
  rc = pub_wait_confirm(p);
  if (rc == MQ_ERR_TIMEOUT || rc == MQ_ERR_PROTOCOL || rc == MQ_ERR_DOWN) {
    log_event(p->params.log, LOG_LEVEL_WARN, "mq publish failed", "exchange=%s key=%s err=%d", exchange, routing_key,
              rc);
    pub_fail(p, 0);
  }
  if (p->conn) amqp_maybe_release_buffers(p->conn);
  return rc;
}

int mq_publish(mq_publisher *p, const char *exchange, const char *routing_key, const void *body, size_t len,
               const mq_publish_opts *opts) {
  if (!p || !exchange || !routing_key || (!body && len)) return MQ_ERR_INVALID;
  if (strlen(exchange) > MQ_NAME_MAX || strlen(routing_key) > 255) return MQ_ERR_INVALID;
  mq_publish_opts o = opts ? *opts : (mq_publish_opts){0};
  amqp_basic_properties_t props = {0};
  amqp_table_entry_t h[3];
  int nh = 0;
  props._flags = AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_CONTENT_TYPE_FLAG;
  props.delivery_mode = 2; /* persistent */
  props.content_type = amqp_cstring_bytes(o.content_type ? o.content_type : "application/json");
  if (o.message_id) {
    props._flags |= AMQP_BASIC_MESSAGE_ID_FLAG;
    props.message_id = amqp_cstring_bytes(o.message_id);
  }
  if (o.request_id) h[nh++] = mq__str_entry("x-request-id", o.request_id);
  if (o.traceparent) h[nh++] = mq__str_entry("traceparent", o.traceparent);
  if (o.attempt > 0) {
    h[nh].key = amqp_cstring_bytes("x-attempt");
    h[nh].value.kind = AMQP_FIELD_KIND_I32;
    h[nh++].value.value.i32 = o.attempt;
  }
  if (nh) {
    props._flags |= AMQP_BASIC_HEADERS_FLAG;
    props.headers = (amqp_table_t){.num_entries = nh, .entries = h};
  }
  return mq__pub_send(p, exchange, routing_key, body, len, &props);
}
