/*
 * mq: RabbitMQ messaging for Fermata on rabbitmq-c 0.11 (librabbitmq).
 *
 * What it gives a service:
 *   - mq_params: where the broker is, parsed from an AMQP URL the caller read from its
 *     configuration (amqp://user:pass@host:port/vhost, or amqps:// for TLS with the
 *     broker's certificate verified; the connection itself is lib/mqconn's).
 *   - mq_topology: a declarative description of the exchanges and queues the service
 *     relies on. Every connection (re)declares it, so a service never depends on another
 *     having started first and a broker that lost its state is set up again.
 *     For each queue Q bound to exchange X the module declares:
 *       X            durable exchange of the given type (topic/direct/fanout)
 *       Q            durable queue bound to X with Q's binding key; its dead letters go to
 *                    X.dlx with routing key Q
 *       X.dlx        durable direct exchange for dead letters
 *       Q.dlq        durable queue bound to X.dlx with key Q (if dead_letter is set)
 *       Q.retry      durable delay queue (if retry is set): no consumer; messages carry a
 *                    per-message TTL (expiration) and, when it runs out, are dead-lettered
 *                    back to Q through the default exchange. This gives retries with
 *                    backoff without blocking the consumer.
 *     Declaring a queue that already exists with other arguments fails (the broker
 *     closes the channel with PRECONDITION_FAILED): change names, not arguments.
 *   - mq_publisher: publishes persistent messages (delivery_mode 2) with publisher
 *     confirms and the mandatory flag: mq_publish returns 0 only once the broker has
 *     acknowledged the message, and reports a nack, a timeout or an unroutable message
 *     (no queue bound) as errors. That is what makes an outbox relay safe: delete the
 *     outbox row only after mq_publish returned 0. After a failure the connection is
 *     dropped and the next call reconnects, but not before a backoff delay has passed
 *     (calls in between fail fast with MQ_ERR_DOWN): the caller owns the retry loop.
 *   - mq_consumer: consumes one queue with manual acks and a prefetch limit on its own
 *     thread and connection, and calls the handler once per delivery. The handler's
 *     verdict decides what happens to the message:
 *       MQ_ACK      done; acknowledged.
 *       MQ_REQUEUE  nack with requeue: redelivered at once (for "not my turn" cases
 *                   only; it spins if the cause persists).
 *       MQ_REJECT   sent to Q.dlq with the headers x-reason (the handler's reason) and
 *                   x-attempt, then acknowledged. If that publish fails the message is
 *                   rejected without requeue, which dead-letters it natively (x-death).
 *       MQ_RETRY    republished to Q.retry with x-attempt + 1 and a TTL from the retry
 *                   backoff, then acknowledged; after max_attempts it is handled as
 *                   MQ_REJECT with reason "max attempts (N): <handler reason>".
 *     Every republish waits for the broker's confirm before the original is acked, so a
 *     crash in between duplicates a message but never loses one: handlers must be
 *     idempotent (redelivered messages carry redelivered = 1).
 *     When the broker goes away (restart, SIGKILL, network) the consumer destroys the
 *     connection, waits with exponential backoff and jitter, reconnects, logs in, reopens
 *     the channel, redeclares the topology, sets qos and consumes again. Unacked messages
 *     come back from the broker.
 *
 * Headers: x-attempt (integer, 1 = first delivery; absent means 1), x-request-id (string,
 * copied from the gateway's request id), x-reason (string, on dead letters), traceparent
 * (string, W3C Trace Context: the publisher's span, which the consumer's span continues).
 * Retries and dead letters keep the original headers, so they stay in the trace.
 *
 * Threads and ownership:
 *   - An rabbitmq-c connection is never shared between threads. An mq_publisher is NOT
 *     thread-safe: use one per thread (or guard it with your own mutex). Each
 *     mq_consumer owns two connections (consume + confirmed republish) used only by its
 *     own thread.
 *   - The handler runs on the consumer's thread. Heartbeats are serviced only inside
 *     library calls, so a handler must return well within 2 x heartbeat (params
 *     heartbeat_s, default 30 s) or the broker drops the connection and redelivers the
 *     message. For concurrency run several consumers (each with its own thread and
 *     connection; prefetch 1 gives fair dispatch), not one consumer with a long handler.
 *   - mq_consumer_stop may be called from any thread (e.g. a signal-handling thread);
 *     it returns after the consumer thread has exited. The handler is never called after
 *     mq_consumer_stop returns.
 *   - All strings passed in are copied or only borrowed during the call, except the
 *     mq_topology passed to mq_publisher_new / mq_consumer_new: it (and the strings it
 *     points to) must outlive the object (typically a static const in the service).
 *   - mq_message fields are borrowed for the duration of the handler call.
 *
 * Errors are negative MQ_E* codes; mq_strerror gives a static description.
 */
#ifndef FERMATA_MQ_H
#define FERMATA_MQ_H

#include <stddef.h>
#include <stdint.h>

#include "mqconn/mqconn.h"

struct log_sink;

enum {
  MQ_OK = 0,
  MQ_ERR_INVALID = -1,    /* bad argument, URL or topology */
  MQ_ERR_NOMEM = -2,      /* out of memory */
  MQ_ERR_DOWN = -3,       /* cannot connect or log in, or waiting out the reconnect backoff */
  MQ_ERR_PROTOCOL = -4,   /* the broker closed the channel/connection or a declare failed */
  MQ_ERR_TIMEOUT = -5,    /* no confirm within the timeout */
  MQ_ERR_NACK = -6,       /* the broker nacked the message: not stored */
  MQ_ERR_UNROUTABLE = -7, /* the message reached no queue (returned as mandatory) */
  MQ_ERR_THREAD = -8,     /* could not start the consumer thread / already running */
};

const char *mq_strerror(int err);

/* Longest exchange or queue name accepted: AMQP allows 255, minus room for the
 * ".retry"/".dlq"/".dlx" suffixes. */
#define MQ_NAME_MAX 200

/* Connection parameters: lib/mqconn's (host, port, user, password, vhost, tls,
 * tls_ca_file, heartbeat_s, connect_timeout_ms, rpc_timeout_ms, log; see mqconn.h). Plain
 * struct: fill it with mq_params_from_url, then adjust. */
typedef mqconn_params mq_params;

/* Parses an amqp:// or amqps:// URL into *out with mqconn's defaults (heartbeat 30 s,
 * connect 5 s, RPC 10 s; port 5672, or 5671 for amqps). User, password and vhost are
 * percent-decoded; an empty vhost ("amqp://h:1/") means "/", RabbitMQ's default vhost, and
 * "%2f" also spells "/". Returns 0 or MQ_ERR_INVALID (bad URL, field longer than its buffer). */
int mq_params_from_url(const char *url, mq_params *out);

/* The password, replacing the URL's ("" keeps it): see mqconn_set_password. */
int mq_params_set_password(mq_params *p, const char *password);

/* The CA bundle amqps connections trust instead of the system's store ("" = the store).
 * MQ_ERR_INVALID for a path too long or a file this process cannot read. */
int mq_params_set_ca_file(mq_params *p, const char *path);

/* One queue of a topology. */
typedef struct mq_queue_spec {
  const char *name;        /* Q */
  const char *binding_key; /* key binding Q to the topology's exchange; NULL = name */
  int dead_letter;         /* declare Q.dlq (recommended: else dead letters are dropped) */
  int retry;               /* declare Q.retry (needed for MQ_RETRY) */
} mq_queue_spec;

typedef struct mq_topology {
  const char *exchange;      /* X */
  const char *exchange_type; /* "topic", "direct" or "fanout" */
  const mq_queue_spec *queues;
  size_t n_queues; /* may be 0: a publisher that only needs the exchange */
} mq_topology;

/* Checks names (1..MQ_NAME_MAX of [A-Za-z0-9._:-]), the exchange type, and that queue
 * names are unique. Returns 0 or MQ_ERR_INVALID. Called by the constructors. */
int mq_topology_validate(const mq_topology *t);

/* Exponential backoff: attempt n (1-based) waits base_ms * 2^(n-1), capped at max_ms,
 * then "equal jitter" keeps the upper half random: d/2 + rnd % (d/2 + 1). rnd is any
 * random 32-bit value (a seam for tests); pure function. */
typedef struct mq_backoff {
  uint32_t base_ms;
  uint32_t max_ms;
} mq_backoff;
uint32_t mq_backoff_delay_ms(const mq_backoff *b, unsigned attempt, uint32_t rnd);

/* ---- publisher ---- */

typedef struct mq_publisher mq_publisher;

/* Creates a publisher; it connects lazily on the first mq_publish. topo may be NULL (no
 * declarations) and must outlive the publisher. Returns NULL on bad arguments/memory. */
mq_publisher *mq_publisher_new(const mq_params *params, const mq_topology *topo, const mq_backoff *reconnect);
void mq_publisher_free(mq_publisher *p);

typedef struct mq_publish_opts {
  const char *content_type; /* NULL = "application/json" */
  const char *request_id;   /* header x-request-id; NULL = none */
  const char *traceparent;  /* header traceparent; NULL = none */
  const char *message_id;   /* property message_id; NULL = none */
  int attempt;              /* header x-attempt; 0 = none */
} mq_publish_opts;

/* Publishes body persistently to exchange/routing_key ("" = default exchange) and waits
 * for the broker's confirm. Returns 0 only when the broker acked it and it reached a
 * queue. opts may be NULL. Blocks up to connect_timeout_ms + rpc_timeout_ms. */
int mq_publish(mq_publisher *p, const char *exchange, const char *routing_key, const void *body, size_t len,
               const mq_publish_opts *opts);

/* Connects and declares the topology now instead of at the first mq_publish (a service
 * that wants its exchange and queues to exist at start). Same backoff rule as mq_publish.
 * Returns 0, MQ_ERR_DOWN or MQ_ERR_NOMEM. */
int mq_publisher_connect(mq_publisher *p);

/* 1 if the publisher currently holds an open connection. */
int mq_publisher_connected(const mq_publisher *p);

/* ---- consumer ---- */

typedef enum mq_verdict { MQ_ACK, MQ_REQUEUE, MQ_REJECT, MQ_RETRY } mq_verdict;

typedef struct mq_message {
  const void *body;
  size_t len;
  const char *routing_key;  /* as published */
  const char *request_id;   /* x-request-id, "" if none */
  const char *traceparent;  /* traceparent, "" if none (not checked: lib/trace parses it) */
  const char *content_type; /* "" if none */
  unsigned attempt;         /* x-attempt, 1 if none */
  int redelivered;          /* the broker delivered it before (crash, nack, lost ack) */
} mq_message;

/* Called once per delivery on the consumer thread. For MQ_REJECT and MQ_RETRY write a
 * short reason into reason (capacity reason_cap, already "" on entry). MQ_RETRY on a queue
 * declared without retry is handled as MQ_REJECT. */
typedef mq_verdict (*mq_handler_fn)(const mq_message *msg, void *arg, char *reason, size_t reason_cap);

typedef struct mq_consumer_opts {
  const char *queue;     /* one of the topology's queues */
  uint16_t prefetch;     /* unacked deliveries in flight; 0 = 1 */
  unsigned max_attempts; /* MQ_RETRY beyond this dead-letters; 0 = 5 */
  mq_backoff retry;      /* TTL of retries; 0s = {1000, 60000} */
  mq_backoff reconnect;  /* after a lost connection; 0s = {200, 5000} */
} mq_consumer_opts;

/* What to do with a delivery of the given attempt whose handler said MQ_RETRY: returns
 * MQ_RETRY with *delay_ms set, or MQ_REJECT once attempt >= max_attempts. Pure; exposed
 * for tests. */
mq_verdict mq_retry_decide(const mq_consumer_opts *opts, unsigned attempt, uint32_t rnd, uint32_t *delay_ms);

typedef struct mq_consumer mq_consumer;

/* topo must contain opts->queue and outlive the consumer. Returns NULL on bad
 * arguments (see mq_topology_validate) or memory. Nothing runs until mq_consumer_start. */
mq_consumer *mq_consumer_new(const mq_params *params, const mq_topology *topo, const mq_consumer_opts *opts,
                             mq_handler_fn handler, void *arg);

/* Starts the consumer thread, which connects (retrying with backoff forever) and
 * consumes until mq_consumer_stop. Returns 0 or MQ_ERR_THREAD. */
int mq_consumer_start(mq_consumer *c);

/* Asks the thread to stop (within ~250 ms plus a running handler call) and joins it.
 * Unacked deliveries go back to the queue when the connection closes. Safe to call more
 * than once, or without start. */
void mq_consumer_stop(mq_consumer *c);

/* 1 while the consumer holds a connection with an active basic.consume. */
int mq_consumer_connected(mq_consumer *c);

/* Stops (if needed) and frees. NULL is fine. */
void mq_consumer_free(mq_consumer *c);

#endif
