/*
 * log: see log.h. Lines are assembled in a fixed 2 KiB buffer; a longer line is cut and
 * marked with "..." rather than allocated, so logging never fails for lack of memory.
 */
#include "log.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

struct log {
  char *service;
  log_level min;
  FILE *out;
};

static const char *const level_names[] = {"debug", "info", "warn", "error"};

log *log_new(const char *service, log_level min_level, FILE *out) {
  log *lg = calloc(1, sizeof *lg);
  if (!lg) return NULL;
  lg->service = strdup(service ? service : "fermata");
  if (!lg->service) {
    free(lg);
    return NULL;
  }
  lg->min = min_level;
  lg->out = out ? out : stderr;
  return lg;
}

void log_free(log *lg) {
  if (!lg) return;
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
    *out = LOG_WARN;
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

void log_event(log *lg, log_level level, const char *msg, const char *fields, ...) {
  if (!lg || level < lg->min) return;
  char line[2048];
  struct timespec ts;
  struct tm tm;
  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  char qmsg[512];
  int n = snprintf(line, sizeof line,
                   "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s service=%s msg=%s",
                   tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                   tm.tm_sec, ts.tv_nsec / 1000000L, level_names[level], lg->service,
                   log_quote(qmsg, sizeof qmsg, msg));
  if (n < 0) return;
  size_t len = (size_t)n < sizeof line ? (size_t)n : sizeof line - 1;
  if (fields && *fields && len + 2 < sizeof line) {
    line[len++] = ' ';
    va_list ap;
    va_start(ap, fields);
    int m = vsnprintf(line + len, sizeof line - len, fields, ap);
    va_end(ap);
    if (m > 0) len += (size_t)m < sizeof line - len ? (size_t)m : sizeof line - len - 1;
  }
  if (len >= sizeof line - 1) memcpy(line + sizeof line - 5, "...", 3), len = sizeof line - 2;
  line[len++] = '\n';
  fwrite(line, 1, len, lg->out);
  fflush(lg->out);
}
