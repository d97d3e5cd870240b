/*
 * outbox: the relay that turns outbox rows into broker messages.
 *
 * Uploads write their "uploaded" message into the `outbox` table in the same transaction
 * as the resource row. This thread publishes the rows in id order with publisher confirms
 * and deletes each row only after the broker confirmed it, so a message is never lost
 * (broker down: rows wait; crash after publish, before delete: the message is sent twice,
 * and consumers are idempotent). Rows are taken FOR UPDATE SKIP LOCKED, so several
 * instances of the service can relay side by side.
 *
 * The relay (a lib/worker thread) wakes when kicked (after an upload) and otherwise every
 * second; after a failed batch it backs off, 200 ms doubling up to 5 s (lib/retry's policy;
 * the publisher refuses calls until its reconnect delay has passed anyway).
 * Thread-safe: kick and the status getters may be called from any thread.
 */
#ifndef FERMATA_RESOURCE_OUTBOX_H
#define FERMATA_RESOURCE_OUTBOX_H

#include <stdbool.h>

#include "db/db.h"
#include "log/log.h"
#include "mq/mq.h"
#include "trace/trace.h"

typedef struct outbox outbox;

/* `db` and `pub` are borrowed; the publisher is used only by the relay thread. */
/* `tracer` (may be NULL) makes a PRODUCER span per message, a child of the upload's
 * context stored with the row; its traceparent goes out with the message. */
outbox *outbox_new(db_pool *db, mq_publisher *pub, log_sink *lg, const trace_tracer *tracer);
int outbox_start(outbox *o);
void outbox_kick(outbox *o);
void outbox_stop(outbox *o); /* joins the thread */
void outbox_free(outbox *o);

/* true while the last publish attempt succeeded (or none was needed yet). */
bool outbox_broker_ok(outbox *o);
/* messages published since start */
long long outbox_published(outbox *o);

#endif
