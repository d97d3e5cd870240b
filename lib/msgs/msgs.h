/*
 * msgs: the two messages between the Resource Service and the Resource Processor, and the
 * broker topology both of them declare.
 *
 *   resource uploaded   {"resourceId": N}   Resource Service -> Resource Processor
 *   resource processed  {"resourceId": N}   Resource Processor -> Resource Service
 *
 * Topology (lib/mq's shape, see mq.h): durable direct exchange "fermata"; queue
 * "resource.uploaded" bound with key "resource.uploaded" and queue "resource.processed"
 * bound with key "resource.processed", each with its dead-letter queue (<queue>.dlq,
 * through "fermata.dlx") and its delay queue (<queue>.retry).
 *
 * Why both sides declare the whole topology (msgs_topology returns the same description
 * for either side): lib/mq publishes with the mandatory flag, so a message to a queue that
 * nobody declared yet is refused as unroutable. Declaring everything on both sides means
 * neither service depends on the other having started first, and the declarations are
 * identical by construction (a declare with other arguments would fail on the broker).
 *
 * Decoding is strict about what matters and tolerant about the rest: the body must be a
 * JSON object (at most MSGS_BODY_MAX bytes) whose "resourceId" is an integer in
 * 1..2147483647 (the contract's id range). Other members are ignored, so a producer may add
 * fields later without breaking consumers. Anything else is refused with a short reason
 * suitable for the x-reason header of a dead letter.
 *
 * Thread-safety: pure functions over caller buffers; the topology is static const data.
 * Ownership: everything returned is static or written into caller buffers.
 */
#ifndef FERMATA_MSGS_H
#define FERMATA_MSGS_H

#include <stddef.h>
#include <stdint.h>

#include "mq/mq.h"

#define MSGS_EXCHANGE "fermata"
#define MSGS_UPLOADED "resource.uploaded"   /* queue name and routing key */
#define MSGS_PROCESSED "resource.processed" /* queue name and routing key */

/* Largest body accepted by msgs_decode; a real message is ~20 bytes. */
#define MSGS_BODY_MAX 4096
/* Room for any encoded message, NUL included: {"resourceId":2147483647} is 25 bytes. */
#define MSGS_ENCODED_MAX 32

enum {
  MSGS_OK = 0,
  MSGS_ERR_INVALID = -1, /* bad argument: NULL, id out of range, buffer too small */
  MSGS_ERR_BAD_BODY = -2 /* the body is not a valid message; see the reason */
};

typedef enum msgs_side {
  MSGS_SIDE_RESOURCE, /* Resource Service: publishes uploaded, consumes processed */
  MSGS_SIDE_PROCESSOR /* Resource Processor: consumes uploaded, publishes processed */
} msgs_side;

/* The topology a side declares (the same full description for both, see above). Static;
 * lives forever, as mq_publisher_new / mq_consumer_new require. NULL for an unknown side. */
const mq_topology *msgs_topology(msgs_side side);

/* The queue a side consumes: MSGS_PROCESSED for the Resource Service, MSGS_UPLOADED for
 * the processor. NULL for an unknown side. */
const char *msgs_consume_queue(msgs_side side);

/* The routing key a side publishes with (to MSGS_EXCHANGE): MSGS_UPLOADED for the Resource
 * Service, MSGS_PROCESSED for the processor. NULL for an unknown side. */
const char *msgs_publish_key(msgs_side side);

/* Writes {"resourceId":N} NUL-terminated into buf (capacity cap, MSGS_ENCODED_MAX is
 * always enough) and its length (without the NUL) into *len. The same body serves both
 * messages. Returns MSGS_OK or MSGS_ERR_INVALID (id not in 1..INT32_MAX, cap too small). */
int msgs_encode(int32_t resource_id, char *buf, size_t cap, size_t *len);

/* Decodes a body of either message into *resource_id. body need not be NUL-terminated.
 * Returns MSGS_OK, MSGS_ERR_BAD_BODY with a reason such as "not JSON: ..." or "resourceId:
 * missing" written into reason (capacity reason_cap; may be NULL/0), or MSGS_ERR_INVALID for
 * NULL resource_id / NULL body with len > 0. */
int msgs_decode(const void *body, size_t len, int32_t *resource_id, char *reason, size_t reason_cap);

#endif
