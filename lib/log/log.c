/*
 * log: see log.h. Lines are assembled in a fixed 2 KiB buffer; a longer line is cut and
 * marked with "..." rather than allocated, so logging never fails for lack of memory.
 *
 * Deferred lines (log_event_deferred, the access log) go to a buffer that a flusher thread
 * writes every flush interval, or sooner when it fills; an immediate line first writes what
 * is buffered, so the output keeps the order of the calls. One mutex guards buffer and
 * stream.
 */
#include "log.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

struct log_sink {
  char *service;
  log_level min;
  FILE *out;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  char *buf; /* deferred lines; NULL until log_buffer_start */
  size_t len, cap;
  unsigned flush_ms;
  bool stop, flusher_running;
  pthread_t flusher;
};

static const char *const level_names[] = {"debug", "info", "warn", "error"};

log_sink *log_new(const char *service, log_level min_level, FILE *out) {
  log_sink *lg = calloc(1, sizeof *lg);
  if (!lg) return NULL;
  lg->service = strdup(service ? service : "fermata");
  if (!lg->service) {
    free(lg);
    return NULL;
  }
  lg->min = min_level;
  lg->out = out ? out : stderr;
  if (pthread_mutex_init(&lg->mu, NULL) != 0) {
    free(lg->service);
    free(lg);
    return NULL;
  }
  if (pthread_cond_init(&lg->cv, NULL) != 0) {
    pthread_mutex_destroy(&lg->mu);
    free(lg->service);
    free(lg);
    return NULL;
  }
  return lg;
}

/* Writes the deferred lines. Caller holds mu. */
static void flush_locked(log_sink *lg) {
  if (lg->len == 0) return;
  fwrite(lg->buf, 1, lg->len, lg->out);
  fflush(lg->out);
  lg->len = 0;
}

static void *flusher_main(void *arg) {
  log_sink *lg = arg;
  pthread_mutex_lock(&lg->mu);
  while (!lg->stop) {
    /* idle: sleep until a deferred line arrives (no wake-ups while nothing is logged) */
    while (!lg->stop && lg->len == 0) pthread_cond_wait(&lg->cv, &lg->mu);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    long long ns = until.tv_nsec + (long long)lg->flush_ms * 1000000LL;
    until.tv_sec += (time_t)(ns / 1000000000LL);
    until.tv_nsec = (long)(ns % 1000000000LL);
    int rc = 0;
    while (!lg->stop && rc != ETIMEDOUT) rc = pthread_cond_timedwait(&lg->cv, &lg->mu, &until);
    flush_locked(lg);
  }
  pthread_mutex_unlock(&lg->mu);
  return NULL;
}

int log_buffer_start(log_sink *lg, unsigned flush_ms, size_t cap) {
  if (!lg || lg->buf || flush_ms == 0 || cap < 4096) return -1;
  char *b = malloc(cap);
  if (!b) return -1;
  pthread_mutex_lock(&lg->mu);
  lg->buf = b;
  lg->cap = cap;
  lg->flush_ms = flush_ms;
  pthread_mutex_unlock(&lg->mu);
  if (pthread_create(&lg->flusher, NULL, flusher_main, lg) != 0) {
    pthread_mutex_lock(&lg->mu);
    lg->buf = NULL;
    pthread_mutex_unlock(&lg->mu);
    free(b);
    return -1;
  }
  lg->flusher_running = true;
  return 0;
}

void log_flush(log_sink *lg) {
  if (!lg) return;
  pthread_mutex_lock(&lg->mu);
  flush_locked(lg);
  pthread_mutex_unlock(&lg->mu);
}

void log_free(log_sink *lg) {
  if (!lg) return;
  if (lg->flusher_running) {
    pthread_mutex_lock(&lg->mu);
    lg->stop = true;
    pthread_cond_signal(&lg->cv);
    pthread_mutex_unlock(&lg->mu);
    pthread_join(lg->flusher, NULL);
  }
  log_flush(lg);
  free(lg->buf);
  pthread_cond_destroy(&lg->cv);
  pthread_mutex_destroy(&lg->mu);
  free(lg->service);
  free(lg);
}

int log_level_parse(const char *s, log_level *out) {
  if (!s) return -1;
  for (int i = 0; i < 4; i++) {
    if (strcasecmp(s, level_names[i]) == 0) {
      *out = (log_level)i;
      return 0;
    }
  }
  if (strcasecmp(s, "warning") == 0) {
    *out = LOG_LEVEL_WARN;
    return 0;
  }
  return -1;
}

const char *log_quote(char *buf, size_t size, const char *s) {
  size_t o = 0;
  if (size < 3) {
    if (size) buf[0] = '\0';
    return buf;
  }
  buf[o++] = '"';
  for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p && o + 3 < size; p++) {
    if (*p == '"' || *p == '\\') {
      if (o + 4 >= size) break;
      buf[o++] = '\\';
      buf[o++] = (char)*p;
    } else if (*p < 0x20 || *p == 0x7f) {
      buf[o++] = '?';
    } else {
      buf[o++] = (char)*p;
    }
  }
  buf[o++] = '"';
  buf[o] = '\0';
  return buf;
}

/* Formats one line, newline included, into line (2 KiB); returns its length. */
__attribute__((format(printf, 6, 0))) static size_t format_line(const log_sink *lg, char *line, size_t size,
                                                                log_level level, const char *msg, const char *fields,
                                                                va_list ap) {
  struct timespec ts;
  struct tm tm;
  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  char qmsg[512];
  int n = snprintf(line, size, "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s service=%s msg=%s", tm.tm_year + 1900,
                   tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000L,
                   level_names[level], lg->service, log_quote(qmsg, sizeof qmsg, msg));
  if (n < 0) return 0;
  size_t len = (size_t)n < size ? (size_t)n : size - 1;
  if (fields && *fields && len + 2 < size) {
    line[len++] = ' ';
    int m = vsnprintf(line + len, size - len, fields, ap);
    if (m > 0) len += (size_t)m < size - len ? (size_t)m : size - len - 1;
  }
  if (len >= size - 1) memcpy(line + size - 5, "...", 3), len = size - 2;
  line[len++] = '\n';
  return len;
}

/* One line, written at once or (deferred, once buffering started) appended to the buffer. */
__attribute__((format(printf, 5, 0))) static void emit(log_sink *lg, log_level level, bool deferred, const char *msg,
                                                       const char *fields, va_list ap) {
  char line[2048];
  size_t len = format_line(lg, line, sizeof line, level, msg, fields, ap);
  if (len == 0) return;
  pthread_mutex_lock(&lg->mu);
  if (deferred && lg->buf) {
    if (lg->len + len > lg->cap) flush_locked(lg);
    if (lg->len == 0) pthread_cond_signal(&lg->cv); /* the flusher's interval starts now */
    memcpy(lg->buf + lg->len, line, len);
    lg->len += len;
  } else {
    flush_locked(lg); /* what was deferred came first */
    fwrite(line, 1, len, lg->out);
    fflush(lg->out);
  }
  pthread_mutex_unlock(&lg->mu);
}

void log_event(log_sink *lg, log_level level, const char *msg, const char *fields, ...) {
  if (!lg || level < lg->min) return;
  va_list ap;
  va_start(ap, fields);
  emit(lg, level, false, msg, fields, ap);
  va_end(ap);
}

void log_event_deferred(log_sink *lg, log_level level, const char *msg, const char *fields, ...) {
  if (!lg || level < lg->min) return;
  va_list ap;
  va_start(ap, fields);
  emit(lg, level, true, msg, fields, ap);
  va_end(ap);
}
