/*
 * mq_internal: what the files of lib/mq share (mq.c: error strings, connection parameters,
 * backoff and small helpers; mq_topology.c: topology validation and declaration;
 * mq_publish.c: the confirmed publisher; mq_consumer.c: the consumer thread). Not part of
 * the module's contract: include only from lib/mq.
 */
#ifndef FERMATA_MQ_INTERNAL_H
#define FERMATA_MQ_INTERNAL_H

#include "mq.h"

#include <amqp.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/time.h>

#include "mqconn/mqconn.h"

#define MQ_CHANNEL MQCONN_CHANNEL

/* Monotonic clock in ms. */
uint64_t mq__now_ms(void);
/* ms as a struct timeval, for rabbitmq-c's timeouts. */
struct timeval mq__tv_ms(uint64_t ms);
/* Per-object random stream (no global rand state): seed with mq__make_seed(obj). */
uint32_t mq__next_rand(unsigned *seed);
unsigned mq__make_seed(const void *obj);

/* Builds "<a><b>" into a capped buffer; names are validated to fit. */
void mq__suffixed(char *dst, size_t cap, const char *a, const char *b);
/* A UTF-8 string table entry; key and val are borrowed. */
amqp_table_entry_t mq__str_entry(const char *key, const char *val);
/* Declares the whole topology (see mq.h for the shape) on channel MQ_CHANNEL; t may be
 * NULL (nothing to declare). Idempotent on the broker. Returns 0 or MQ_ERR_PROTOCOL. */
int mq__declare_topology(amqp_connection_state_t conn, const mq_topology *t);

/* Publishes with ready-made properties and waits for the confirm; shared by mq_publish and
 * the consumer's republishing. Returns as mq_publish does. */
int mq__pub_send(mq_publisher *p, const char *exchange, const char *routing_key, const void *body, size_t len,
                 const amqp_basic_properties_t *props);

#endif
