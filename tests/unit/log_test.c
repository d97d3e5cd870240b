/* log_test: line format, and deferred lines: buffered until the flush interval, an
 * immediate line or log_free, in the order of the calls. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log/log.h"

typedef struct {
  FILE *f;
  char *text;
  size_t len;
} sink;

static void sink_open(sink *s) {
  s->text = NULL;
  s->len = 0;
  s->f = open_memstream(&s->text, &s->len);
  assert_non_null(s->f);
}

static void sink_close(sink *s) {
  fclose(s->f);
  free(s->text);
}

static void immediate_lines_are_written_at_once(void **state) {
  (void)state;
  sink s;
  sink_open(&s);
  log_sink *lg = log_new("song", LOG_LEVEL_INFO, s.f);
  log_event(lg, LOG_LEVEL_INFO, "started", "port=%d", 8082);
  log_event(lg, LOG_LEVEL_DEBUG, "hidden", NULL);
  assert_non_null(strstr(s.text, " level=info service=song msg=\"started\" port=8082\n"));
  assert_null(strstr(s.text, "hidden"));
  log_free(lg);
  sink_close(&s);
}

static void deferred_lines_wait_and_keep_their_order(void **state) {
  (void)state;
  sink s;
  sink_open(&s);
  log_sink *lg = log_new("song", LOG_LEVEL_INFO, s.f);
  assert_int_equal(log_buffer_start(lg, 60000, 4096), 0);
  assert_int_equal(log_buffer_start(lg, 60000, 4096), -1); /* once */
  log_event_deferred(lg, LOG_LEVEL_INFO, "request", "n=1");
  log_event_deferred(lg, LOG_LEVEL_INFO, "request", "n=2");
  assert_int_equal(s.len, 0); /* buffered: no write yet */
  log_event(lg, LOG_LEVEL_WARN, "something", NULL);
  char *one = strstr(s.text, "n=1"), *two = strstr(s.text, "n=2"), *warn = strstr(s.text, "something");
  assert_true(one && two && warn && one < two && two < warn);
  log_event_deferred(lg, LOG_LEVEL_INFO, "request", "n=3");
  log_free(lg); /* writes what is left */
  assert_non_null(strstr(s.text, "n=3"));
  sink_close(&s);
}

static void the_flusher_writes_on_its_interval_and_when_full(void **state) {
  (void)state;
  sink s;
  sink_open(&s);
  log_sink *lg = log_new("song", LOG_LEVEL_INFO, s.f);
  assert_int_equal(log_buffer_start(lg, 50, 4096), 0);
  log_event_deferred(lg, LOG_LEVEL_INFO, "request", "n=1");
  for (int i = 0; i < 200 && s.len == 0; i++) usleep(10000); /* the flusher, within 2 s */
  assert_non_null(strstr(s.text, "n=1"));
  log_free(lg);
  sink_close(&s);

  sink_open(&s);
  lg = log_new("song", LOG_LEVEL_INFO, s.f);
  assert_int_equal(log_buffer_start(lg, 60000, 4096), 0);
  for (int i = 0; i < 100; i++) log_event_deferred(lg, LOG_LEVEL_INFO, "request", "i=%d", i);
  assert_true(s.len > 0); /* 100 lines of ~90 bytes overflow 4 KiB: written */
  assert_non_null(strstr(s.text, "i=0\n"));
  log_free(lg);
  assert_non_null(strstr(s.text, "i=99\n"));
  sink_close(&s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(immediate_lines_are_written_at_once),
      cmocka_unit_test(deferred_lines_wait_and_keep_their_order),
      cmocka_unit_test(the_flusher_writes_on_its_interval_and_when_full),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
