/* lib/trace: the wire formats (valid, invalid, edge cases), extraction order, ids,
 * sampling and span bookkeeping. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <cmocka.h>

#include "trace/trace.h"

#define TP "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

static void traceparent_valid(void **state) {
  (void)state;
  trace_ctx c;
  assert_int_equal(trace_parse_traceparent(TP, &c), TRACE_OK);
  assert_true(c.valid);
  assert_int_equal(c.sampling, TRACE_SAMPLING_ACCEPT);
  assert_int_equal(c.trace_id[0], 0x4b);
  assert_int_equal(c.trace_id[15], 0x36);
  assert_int_equal(c.span_id[7], 0xb7);
  char buf[64];
  assert_int_equal(trace_format_traceparent(&c, buf, sizeof buf), TRACE_OK);
  assert_string_equal(buf, TP);
  assert_int_equal(trace_parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", &c), TRACE_OK);
  assert_int_equal(c.sampling, TRACE_SAMPLING_DENY);
  assert_int_equal(trace_format_traceparent(&c, buf, sizeof buf), TRACE_OK);
  assert_string_equal(buf + 53, "00");
  /* other flag bits: only "sampled" counts */
  assert_int_equal(trace_parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03", &c), TRACE_OK);
  assert_int_equal(c.sampling, TRACE_SAMPLING_ACCEPT);
  /* a future version may append fields after a '-' */
  assert_int_equal(trace_parse_traceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-xyz", &c),
                   TRACE_OK);
  assert_int_equal(trace_format_traceparent(&c, buf, TRACEPARENT_LEN), TRACE_ERR_SPACE);
}

static void traceparent_invalid(void **state) {
  (void)state;
  const char *bad[] = {
      "",
      "00",
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0",   /* short */
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-", /* 00 has no more fields */
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x", /* trailing junk */
      "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  /* version ff */
      "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",  /* uppercase */
      "00-00000000000000000000000000000000-00f067aa0ba902b7-01",  /* zero trace id */
      "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",  /* zero span id */
      "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  /* separator */
      "00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01",  /* shifted */
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g",  /* flags */
      "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x", /* later version, no '-' */
      " 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", /* leading space */
      "0x-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
  };
  trace_ctx c;
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    memset(&c, 0x5a, sizeof c);
    assert_int_equal(trace_parse_traceparent(bad[i], &c), TRACE_ERR_INVALID);
    assert_false(c.valid);
    assert_int_equal(c.sampling, TRACE_SAMPLING_DEFER);
  }
  assert_int_equal(trace_parse_traceparent(NULL, &c), TRACE_ERR_INVALID);
  char buf[64];
  assert_int_equal(trace_format_traceparent(&c, buf, sizeof buf), TRACE_ERR_INVALID);
}

static void b3_single(void **state) {
  (void)state;
  trace_ctx c;
  char buf[64];
  assert_int_equal(trace_parse_b3("80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90", &c),
                   TRACE_OK);
  assert_true(c.valid);
  assert_int_equal(c.sampling, TRACE_SAMPLING_ACCEPT);
  assert_int_equal(trace_format_b3(&c, buf, sizeof buf), TRACE_OK);
  assert_string_equal(buf, "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1");
  assert_int_equal(trace_format_traceparent(&c, buf, sizeof buf), TRACE_OK);
  assert_string_equal(buf, "00-80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-01");
  /* 64-bit trace id: widened with leading zeros */
  assert_int_equal(trace_parse_b3("64fe8b2a57d3eff7-e457b5a2e4d86bd1-0", &c), TRACE_OK);
  assert_int_equal(c.sampling, TRACE_SAMPLING_DENY);
  assert_int_equal(trace_format_b3(&c, buf, sizeof buf), TRACE_OK);
  assert_string_equal(buf, "000000000000000064fe8b2a57d3eff7-e457b5a2e4d86bd1-0");
  /* no sampling state: defer; debug: accept */
  assert_int_equal(trace_parse_b3("64fe8b2a57d3eff7-e457b5a2e4d86bd1", &c), TRACE_OK);
  assert_int_equal(c.sampling, TRACE_SAMPLING_DEFER);
  assert_int_equal(trace_parse_b3("64fe8b2a57d3eff7-e457b5a2e4d86bd1-d", &c), TRACE_OK);
  assert_int_equal(c.sampling, TRACE_SAMPLING_ACCEPT);
  /* a lone decision */
  assert_int_equal(trace_parse_b3("0", &c), TRACE_OK);
  assert_false(c.valid);
  assert_int_equal(c.sampling, TRACE_SAMPLING_DENY);
  assert_int_equal(trace_parse_b3("1", &c), TRACE_OK);
  assert_int_equal(c.sampling, TRACE_SAMPLING_ACCEPT);
  assert_int_equal(trace_format_b3(&c, buf, TRACE_B3_LEN), TRACE_ERR_INVALID);
  const char *bad[] = {
      "",
      "2",
      "x",
      "64fe8b2a57d3eff7",
      "64fe8b2a57d3eff7-",
      "64fe8b2a57d3eff7-e457b5a2e4d86bd",
      "64fe8b2a57d3eff7-e457b5a2e4d86bd1-",
      "64fe8b2a57d3eff7-e457b5a2e4d86bd1-2",
      "64fe8b2a57d3eff7-e457b5a2e4d86bd1-11",
      "64fe8b2a57d3eff7-e457b5a2e4d86bd1-1-",
      "64fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b9",
      "64fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b900",
      "64fe8b2a57d3eff7-e457b5a2e4d86bd1-1-0000000000000000",
      "64fe8b2a57d3eff-e457b5a2e4d86bd1",
      "64FE8B2A57D3EFF7-e457b5a2e4d86bd1",
      "0000000000000000-e457b5a2e4d86bd1",
      "64fe8b2a57d3eff7-0000000000000000",
      "64fe8b2a57d3eff7-e457b5a2e4d86bd1x",
      "80f198ee56343ba864fe8b2a57d3eff7a-e457b5a2e4d86bd1",
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    assert_int_equal(trace_parse_b3(bad[i], &c), TRACE_ERR_INVALID);
    assert_false(c.valid);
  }
  assert_int_equal(trace_parse_b3(NULL, &c), TRACE_ERR_INVALID);
}

static void b3_multi(void **state) {
  (void)state;
  trace_ctx c;
  char buf[64];
  assert_int_equal(
      trace_parse_b3_multi("463ac35c9f6413ad48485a3953bb6124", "a2fb4a1d1a96d312", "1", NULL, "0020000000000001", &c),
      TRACE_OK);
  assert_true(c.valid);
  assert_int_equal(c.sampling, TRACE_SAMPLING_ACCEPT);
  assert_int_equal(trace_format_traceparent(&c, buf, sizeof buf), TRACE_OK);
  assert_string_equal(buf, "00-463ac35c9f6413ad48485a3953bb6124-a2fb4a1d1a96d312-01");
  assert_int_equal(trace_parse_b3_multi("48485a3953bb6124", "a2fb4a1d1a96d312", "false", NULL, NULL, &c), TRACE_OK);
  assert_int_equal(c.sampling, TRACE_SAMPLING_DENY);
  assert_int_equal(trace_parse_b3_multi("48485a3953bb6124", "a2fb4a1d1a96d312", "0", "1", NULL, &c), TRACE_OK);
  assert_int_equal(c.sampling, TRACE_SAMPLING_ACCEPT); /* debug wins */
  assert_int_equal(trace_parse_b3_multi("48485a3953bb6124", "a2fb4a1d1a96d312", NULL, NULL, NULL, &c), TRACE_OK);
  assert_int_equal(c.sampling, TRACE_SAMPLING_DEFER);
  assert_int_equal(trace_parse_b3_multi(NULL, NULL, "0", NULL, NULL, &c), TRACE_OK);
  assert_false(c.valid);
  assert_int_equal(c.sampling, TRACE_SAMPLING_DENY);
  assert_int_equal(trace_parse_b3_multi(NULL, NULL, NULL, NULL, NULL, &c), TRACE_ERR_INVALID);
  assert_int_equal(trace_parse_b3_multi("48485a3953bb6124", NULL, "1", NULL, NULL, &c), TRACE_ERR_INVALID);
  assert_int_equal(trace_parse_b3_multi(NULL, "a2fb4a1d1a96d312", "1", NULL, NULL, &c), TRACE_ERR_INVALID);
  assert_int_equal(trace_parse_b3_multi("48485a3953bb6124", "a2fb4a1d1a96d312", "yes", NULL, NULL, &c),
                   TRACE_ERR_INVALID);
  assert_int_equal(trace_parse_b3_multi("48485a3953bb612", "a2fb4a1d1a96d312", "1", NULL, NULL, &c), TRACE_ERR_INVALID);
  assert_int_equal(trace_parse_b3_multi("48485a3953bb6124", "a2fb4a1d1a96d3120", "1", NULL, NULL, &c),
                   TRACE_ERR_INVALID);
  assert_int_equal(trace_parse_b3_multi("48485a3953bb6124", "a2fb4a1d1a96d312", "1", NULL, "xyz", &c),
                   TRACE_ERR_INVALID);
  assert_false(c.valid);
}

static void tracestate_rules(void **state) {
  (void)state;
  trace_ctx c;
  memset(&c, 0, sizeof c);
  trace_set_tracestate(&c, "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE");
  assert_string_equal(c.tracestate, "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE");
  trace_set_tracestate(&c, "a=b\x01");
  assert_string_equal(c.tracestate, "");
  char big[TRACE_STATE_MAX + 2];
  memset(big, 'a', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  trace_set_tracestate(&c, big);
  assert_string_equal(c.tracestate, "");
  big[TRACE_STATE_MAX] = '\0';
  trace_set_tracestate(&c, big);
  assert_int_equal(strlen(c.tracestate), TRACE_STATE_MAX);
  char many[200] = "";
  for (int i = 0; i < 33; i++) strcat(many, "k=v,");
  many[strlen(many) - 1] = '\0';
  trace_set_tracestate(&c, many);
  assert_string_equal(c.tracestate, "");
  trace_set_tracestate(&c, NULL);
  assert_string_equal(c.tracestate, "");
}

typedef struct {
  const char *names[8];
  const char *values[8];
  size_t n;
} headers;

static const char *lookup(void *ud, const char *name) {
  headers *h = ud;
  for (size_t i = 0; i < h->n; i++)
    if (strcasecmp(h->names[i], name) == 0) return h->values[i];
  return NULL;
}

static void extract_order(void **state) {
  (void)state;
  trace_ctx c;
  char buf[64];
  headers h = {{"traceparent", "tracestate", "b3"}, {TP, "a=b", "64fe8b2a57d3eff7-e457b5a2e4d86bd1-0"}, 3};
  trace_extract(lookup, &h, &c);
  assert_true(c.valid);
  trace_format_traceparent(&c, buf, sizeof buf);
  assert_string_equal(buf, TP);
  assert_string_equal(c.tracestate, "a=b");
  /* an invalid traceparent falls through to b3, and its tracestate is not kept */
  h.values[0] = "00-bad";
  trace_extract(lookup, &h, &c);
  assert_true(c.valid);
  assert_string_equal(c.tracestate, "");
  trace_format_b3(&c, buf, sizeof buf);
  assert_string_equal(buf, "000000000000000064fe8b2a57d3eff7-e457b5a2e4d86bd1-0");
  headers m = {{"X-B3-TraceId", "X-B3-SpanId", "X-B3-Sampled"}, {"48485a3953bb6124", "a2fb4a1d1a96d312", "1"}, 3};
  trace_extract(lookup, &m, &c);
  assert_true(c.valid);
  assert_int_equal(c.sampling, TRACE_SAMPLING_ACCEPT);
  headers none = {{"X-B3-TraceId"}, {"nothex"}, 1};
  trace_extract(lookup, &none, &c);
  assert_false(c.valid);
  assert_int_equal(c.sampling, TRACE_SAMPLING_DEFER);
  trace_extract(NULL, NULL, &c);
  assert_false(c.valid);
}

typedef struct {
  trace_span last;
  int calls;
} sink;

static void capture(void *ud, const trace_span *s) {
  sink *k = ud;
  k->last = *s;
  k->calls++;
}

static void spans_children_and_export(void **state) {
  (void)state;
  sink k = {.calls = 0};
  trace_tracer *t = trace_tracer_new("resource", 1.0, capture, &k);
  assert_non_null(t);
  assert_string_equal(trace_tracer_service(t), "resource");
  trace_ctx in;
  assert_int_equal(trace_parse_traceparent(TP, &in), TRACE_OK);
  trace_set_tracestate(&in, "x=y");
  trace_span server;
  trace_span_start(t, &server, &in, "GET /resources/{id}", TRACE_KIND_SERVER);
  assert_true(server.valid);
  assert_true(server.sampled);
  assert_true(server.has_parent);
  assert_memory_equal(server.trace_id, in.trace_id, 16);
  assert_memory_equal(server.parent_id, in.span_id, 8);
  assert_memory_not_equal(server.span_id, in.span_id, 8);
  char tid[TRACE_ID_HEX];
  assert_string_equal(trace_span_trace_id(&server, tid), "4bf92f3577b34da6a3ce929d0e0e4736");
  trace_ctx child_ctx;
  trace_span_ctx(&server, &child_ctx);
  assert_string_equal(child_ctx.tracestate, "x=y");
  trace_span client;
  trace_span_start(t, &client, &child_ctx, "GET", TRACE_KIND_CLIENT);
  assert_memory_equal(client.parent_id, server.span_id, 8);
  trace_span_remote(&client, "storage", "127.0.0.1", 8083);
  trace_span_tag(&client, "http.method", "GET");
  trace_span_tag(&client, "http.method", "PUT");
  assert_int_equal(client.ntags, 1);
  assert_string_equal(client.tags[0].value, "PUT");
  for (int i = 0; i < 20; i++) trace_span_tag(&client, i % 2 ? "a" : "b", "v"); /* replaced, not added */
  char key[8];
  for (int i = 0; i < 20; i++) {
    snprintf(key, sizeof key, "k%d", i);
    trace_span_tag(&client, key, "v");
  }
  assert_int_equal(client.ntags, TRACE_TAGS_MAX);
  trace_span_fail(&client, NULL);
  assert_true(client.error);
  char tp[64];
  assert_int_equal(trace_span_traceparent(&client, tp, sizeof tp), TRACE_OK);
  trace_ctx back;
  assert_int_equal(trace_parse_traceparent(tp, &back), TRACE_OK);
  assert_memory_equal(back.span_id, client.span_id, 8);
  trace_span_end(t, &client);
  assert_int_equal(k.calls, 1);
  assert_true(k.last.duration_us >= 1);
  assert_string_equal(k.last.remote_service, "storage");
  assert_int_equal(k.last.remote_port, 8083);
  trace_span_end(t, &server);
  assert_int_equal(k.calls, 2);
  assert_true(k.last.start_us > 1700000000LL * 1000000);
  trace_tracer_free(t);
}

static void roots_and_sampling(void **state) {
  (void)state;
  sink k = {.calls = 0};
  trace_tracer *never = trace_tracer_new("song", 0.0, capture, &k);
  trace_span s;
  trace_span_start(never, &s, NULL, "root", TRACE_KIND_SERVER);
  assert_true(s.valid);
  assert_false(s.has_parent);
  assert_false(s.sampled);
  trace_span_end(never, &s);
  assert_int_equal(k.calls, 0);
  /* the parent's decision wins over the probability */
  trace_ctx in;
  trace_parse_traceparent(TP, &in);
  trace_span_start(never, &s, &in, "child", TRACE_KIND_SERVER);
  assert_true(s.sampled);
  trace_span_end(never, &s);
  assert_int_equal(k.calls, 1);
  /* a lone B3 "1" starts a sampled root */
  trace_parse_b3("1", &in);
  trace_span_start(never, &s, &in, "root", TRACE_KIND_SERVER);
  assert_true(s.sampled);
  assert_false(s.has_parent);
  trace_tracer_free(never);

  trace_tracer *all = trace_tracer_new("song", 1.0, NULL, NULL);
  trace_parse_b3("0", &in);
  trace_span_start(all, &s, &in, "root", TRACE_KIND_SERVER);
  assert_false(s.sampled);
  trace_span_start(all, &s, NULL, "root", TRACE_KIND_SERVER);
  assert_true(s.sampled);
  trace_span_end(all, &s); /* no exporter: nothing happens */
  trace_tracer_free(all);

  /* 0.1: about one root in ten, decided by the trace id (so the same everywhere) */
  trace_tracer *tenth = trace_tracer_new("song", 0.1, NULL, NULL);
  trace_tracer *tenth2 = trace_tracer_new("resource", 0.1, NULL, NULL);
  int sampled = 0;
  for (int i = 0; i < 4000; i++) {
    trace_span_start(tenth, &s, NULL, "r", TRACE_KIND_SERVER);
    sampled += s.sampled;
    /* B3 without a decision: the second service decides the same */
    trace_ctx c;
    trace_span_ctx(&s, &c);
    c.sampling = TRACE_SAMPLING_DEFER;
    trace_span child;
    trace_span_start(tenth2, &child, &c, "c", TRACE_KIND_SERVER);
    assert_int_equal(child.sampled, s.sampled);
  }
  assert_in_range(sampled, 280, 520);
  trace_tracer_free(tenth);
  trace_tracer_free(tenth2);

  assert_null(trace_tracer_new("x", 1.5, NULL, NULL));
  assert_null(trace_tracer_new("x", -0.1, NULL, NULL));
  /* a NULL tracer makes nothing */
  trace_span_start(NULL, &s, NULL, "none", TRACE_KIND_SERVER);
  assert_false(s.valid);
  trace_span_tag(&s, "a", "b");
  assert_int_equal(s.ntags, 0);
  trace_span_end(NULL, &s);
  char tid[TRACE_ID_HEX];
  assert_string_equal(trace_span_trace_id(&s, tid), "");
  char tp[64];
  assert_int_equal(trace_span_traceparent(&s, tp, sizeof tp), TRACE_ERR_INVALID);
  assert_string_equal(trace_tracer_service(NULL), "");
  trace_tracer_free(NULL);
}

static void message_spans(void **state) {
  (void)state;
  trace_tracer *t = trace_tracer_new("processor", 1.0, NULL, NULL);
  trace_span s;
  trace_span_start_message(t, &s, TP, false, "process", TRACE_KIND_CONSUMER, "resource.uploaded");
  assert_true(s.valid);
  assert_true(s.has_parent);
  assert_int_equal(s.parent_id[7], 0xb7);
  assert_int_equal(s.kind, TRACE_KIND_CONSUMER);
  assert_string_equal(s.remote_service, "rabbitmq");
  assert_string_equal(s.tags[0].key, "messaging.destination");
  assert_string_equal(s.tags[0].value, "resource.uploaded");
  /* no or a bad traceparent: a new trace only when asked for */
  trace_span_start_message(t, &s, "", false, "publish", TRACE_KIND_PRODUCER, "k");
  assert_false(s.valid);
  trace_span_start_message(t, &s, NULL, false, "publish", TRACE_KIND_PRODUCER, "k");
  assert_false(s.valid);
  trace_span_start_message(t, &s, "00-zz", true, "process", TRACE_KIND_CONSUMER, "k");
  assert_true(s.valid);
  assert_false(s.has_parent);
  trace_tracer_free(t);
}

static void probability_and_random(void **state) {
  (void)state;
  double p;
  assert_int_equal(trace_probability_parse("0.1", &p), TRACE_OK);
  assert_true(p > 0.099 && p < 0.101);
  assert_int_equal(trace_probability_parse("1.0", &p), TRACE_OK);
  assert_int_equal(trace_probability_parse("0", &p), TRACE_OK);
  const char *bad[] = {"", "x", "1.5", "-0.1", "nan", "0.1x", "1e999"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) assert_int_equal(trace_probability_parse(bad[i], &p), -1);
  assert_int_equal(trace_probability_parse(NULL, &p), TRACE_ERR_INVALID);
  uint8_t a[16], b[16];
  assert_int_equal(trace_random(a, sizeof a), TRACE_OK);
  assert_int_equal(trace_random(b, sizeof b), TRACE_OK);
  assert_memory_not_equal(a, b, sizeof a);
  char field[TRACE_LOG_FIELD];
  trace_ctx c;
  trace_parse_traceparent(TP, &c);
  assert_string_equal(trace_log_field(&c, field), " trace_id=4bf92f3577b34da6a3ce929d0e0e4736");
  c.valid = false;
  assert_string_equal(trace_log_field(&c, field), "");
  assert_string_equal(trace_log_field(NULL, field), "");
  char hex[33];
  uint8_t bytes[] = {0x00, 0x0f, 0xa0, 0xff};
  trace_hex(bytes, 4, hex);
  assert_string_equal(hex, "000fa0ff");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(traceparent_valid),
      cmocka_unit_test(traceparent_invalid),
      cmocka_unit_test(b3_single),
      cmocka_unit_test(b3_multi),
      cmocka_unit_test(tracestate_rules),
      cmocka_unit_test(extract_order),
      cmocka_unit_test(spans_children_and_export),
      cmocka_unit_test(roots_and_sampling),
      cmocka_unit_test(probability_and_random),
      cmocka_unit_test(message_spans),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
