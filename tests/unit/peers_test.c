/* Unit tests of services/processor/peers that need no server: a refused connection is
 * PEER_ERR_TRANSIENT, a URL httpc refuses is PEER_ERR_PERMANENT, and neither reports an
 * outcome (found / created stay false), a range that cannot be asked for is refused before
 * any call. The 206/416/404/2xx/409 answers are covered against
 * the real services by the system tests (tests/system, the pipeline's). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "peers.h"

static const mp3_song a_song = {.name = "n", .artist = "a", .album = "b", .duration = "01:02", .year = "2001"};

static void with_peers(const char *url, void (*check)(const peers *, proc_stats *)) {
  httpc *c = NULL;
  assert_int_equal(httpc_new(NULL, &c), 0);
  proc_stats stats;
  memset(&stats, 0, sizeof stats);
  peers p = {.resource_http = c, .song_http = c, .resource_url = url, .song_url = url, .stats = &stats};
  check(&p, &stats);
  httpc_free(c);
}

static void refused(const peers *p, proc_stats *stats) {
  char reason[256] = "", buf[64];
  peers_range got = {.found = true};
  assert_int_equal(peers_get_range(p, 7, "rid", NULL, 0, 32, buf, sizeof buf, &got, reason, sizeof reason),
                   PEER_ERR_TRANSIENT);
  assert_false(got.found);
  assert_non_null(strstr(reason, "GET resource"));
  bool created = true;
  assert_int_equal(peers_post_song(p, 7, &a_song, NULL, NULL, &created, reason, sizeof reason), PEER_ERR_TRANSIENT);
  assert_false(created);
  assert_non_null(strstr(reason, "POST song"));
  assert_int_equal(stats->calls[PROC_PEER_RESOURCE][PROC_CALL_ERROR], 1);
  assert_int_equal(stats->calls[PROC_PEER_SONG][PROC_CALL_ERROR], 1);
  assert_int_equal(stats->fetched_bytes, 0);
}

static void test_refused_is_transient(void **state) {
  (void)state;
  with_peers("http://127.0.0.1:1", refused);
}

static void bad_url(const peers *p, proc_stats *stats) {
  (void)stats;
  char reason[256] = "", buf[64];
  peers_range got = {.found = true};
  bool created = true;
  assert_int_equal(peers_get_range(p, 7, NULL, NULL, 0, 32, buf, sizeof buf, &got, reason, sizeof reason),
                   PEER_ERR_PERMANENT);
  assert_false(got.found);
  assert_int_equal(peers_post_song(p, 7, &a_song, NULL, NULL, &created, reason, sizeof reason), PEER_ERR_PERMANENT);
  assert_false(created);
}

/* A range that cannot be asked for is refused before any call. */
static void bad_range(const peers *p, proc_stats *stats) {
  char reason[256] = "", buf[64];
  peers_range got;
  assert_int_equal(peers_get_range(p, 7, NULL, NULL, 0, 0, buf, sizeof buf, &got, reason, sizeof reason),
                   PEER_ERR_PERMANENT);
  assert_int_equal(peers_get_range(p, 7, NULL, NULL, 0, 65, buf, sizeof buf, &got, reason, sizeof reason),
                   PEER_ERR_PERMANENT);
  assert_int_equal(peers_get_range(p, 7, NULL, NULL, UINT64_MAX - 3, 8, buf, sizeof buf, &got, reason, sizeof reason),
                   PEER_ERR_PERMANENT);
  assert_string_equal(reason, "GET resource: bad range");
  assert_int_equal(stats->calls[PROC_PEER_RESOURCE][PROC_CALL_ERROR], 0);
}

static void test_bad_range_is_permanent(void **state) {
  (void)state;
  with_peers("http://127.0.0.1:1", bad_range);
}

static void test_bad_url_is_permanent(void **state) {
  (void)state;
  with_peers("file:///tmp", bad_url);
}

int main(void) {
  curl_global_init(CURL_GLOBAL_DEFAULT);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_refused_is_transient),
      cmocka_unit_test(test_bad_url_is_permanent),
      cmocka_unit_test(test_bad_range_is_permanent),
  };
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  curl_global_cleanup();
  return rc;
}
