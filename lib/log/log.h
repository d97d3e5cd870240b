/*
 * log: structured logging, one line per event.
 *
 *   ts=2026-11-24T23:59:59.123Z level=info service=song msg="request" method=GET status=200
 *
 * A `log` is created in main and passed down; it holds the service name, the minimum level
 * and the output stream (borrowed, usually stderr). Each call formats the whole line into
 * a stack buffer and writes it with one fwrite, so lines from many threads never
 * interleave. Thread-safe. Lines of high volume (the access log) can be deferred: they are
 * buffered and written together, at most every flush interval, so they cost no system call
 * each; a line logged the ordinary way writes the buffered ones first, so order is kept. Values that can carry spaces should be quoted by the caller with
 * log_quote(); credentials are never passed to this module.
 */
#ifndef FERMATA_LOG_H
#define FERMATA_LOG_H

#include <stdio.h>

typedef enum { LOG_LEVEL_DEBUG = 0, LOG_LEVEL_INFO, LOG_LEVEL_WARN, LOG_LEVEL_ERROR } log_level;

typedef struct log_sink log_sink;

/* Returns NULL on allocation failure. `service` is copied; `out` is borrowed. */
log_sink *log_new(const char *service, log_level min_level, FILE *out);
void log_free(log_sink *lg);

/* Parses "debug", "info", "warn", "error" (any case). Returns 0 or -1. */
int log_level_parse(const char *s, log_level *out);

/* Logs msg plus key=value fields given printf-style in `fields` (may be NULL).
 * A NULL `lg` drops the event (handy in unit tests). */
void log_event(log_sink *lg, log_level level, const char *msg, const char *fields, ...)
    __attribute__((format(printf, 4, 5)));

/* Like log_event, but once log_buffer_start ran the line is buffered (see the top). At
 * most the last flush interval of deferred lines is lost if the process is killed. */
void log_event_deferred(log_sink *lg, log_level level, const char *msg, const char *fields, ...)
    __attribute__((format(printf, 4, 5)));

/* Starts buffering deferred lines: a thread writes them every flush_ms, or when `cap`
 * bytes (>= 4096) are waiting. Once per log; log_free writes what is left and stops it.
 * Returns 0, or -1 (bad arguments, already started, no memory or thread). */
int log_buffer_start(log_sink *lg, unsigned flush_ms, size_t cap);

/* Writes the deferred lines now. */
void log_flush(log_sink *lg);

/* Writes `s` as a double-quoted logfmt value into buf (escaping quotes, backslashes and
 * control characters, truncating to fit). Returns buf. */
const char *log_quote(char *buf, size_t size, const char *s);

#endif
