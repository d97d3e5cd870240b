/*
 * C side of the breaker differential test: reads a scenario file (format in README.md),
 * runs it on lib/breaker with a fake clock and prints one trace line per step, in exactly
 * the format Harness.java prints for Resilience4j. The driver (run.py) diffs the two.
 *
 * Automatic transitions: after `advance` the harness calls breaker_tick(), so timers that
 * fell due during the advance fire in that step, as the Java side's virtual-time scheduler
 * runs them when the clock is advanced.
 *
 * --no-events: the breaker gets no listener and no event ring, so records take the
 * lock-free fast path where it applies (see breaker_state.c); events print as "-" and run.py
 * compares everything else.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "breaker/breaker.h"

typedef struct harness {
  int64_t now;
  int no_events;
  char events[1 << 16];
  size_t evlen;
} harness;

static int64_t h_clock(void *ctx) { return ((harness *)ctx)->now; }

static uint32_t bits(float f) {
  uint32_t u;
  memcpy(&u, &f, sizeof u);
  return u;
}

static void h_listener(void *ctx, const breaker *b, const breaker_event *ev) {
  (void)b;
  harness *h = ctx;
  char one[128];
  int n;
  if (ev->type == BREAKER_EV_STATE_TRANSITION)
    n = snprintf(one, sizeof one, "STATE_TRANSITION:%s_TO_%s", breaker_state_name(ev->from),
                 breaker_state_name(ev->to));
  else if (ev->type == BREAKER_EV_FAILURE_RATE_EXCEEDED || ev->type == BREAKER_EV_SLOW_CALL_RATE_EXCEEDED)
    n = snprintf(one, sizeof one, "%s:%" PRIx32, breaker_event_type_name(ev->type), bits(ev->rate));
  else
    n = snprintf(one, sizeof one, "%s", breaker_event_type_name(ev->type));
  if (n < 0 || h->evlen + (size_t)n + 2 >= sizeof h->events)
    return; /* a step never publishes that much; the diff would show it */
  if (h->evlen) h->events[h->evlen++] = ',';
  memcpy(h->events + h->evlen, one, (size_t)n + 1);
  h->evlen += (size_t)n;
}

static const char *kv_get(char **toks, int ntok, const char *key) {
  size_t kl = strlen(key);
  for (int i = 0; i < ntok; i++)
    if (strncmp(toks[i], key, kl) == 0 && toks[i][kl] == '=') return toks[i] + kl + 1;
  return NULL;
}

/* Builds a config from key=value tokens. Unknown/absent keys keep the defaults. */
static void parse_config(char **toks, int ntok, breaker_config *c, harness *h) {
  const char *v;
  breaker_config_default(c);
  if ((v = kv_get(toks, ntok, "fr"))) c->failure_rate_threshold = strtof(v, NULL);
  if ((v = kv_get(toks, ntok, "sr"))) c->slow_call_rate_threshold = strtof(v, NULL);
  if ((v = kv_get(toks, ntok, "waitms"))) c->wait_in_open_ms = strtoll(v, NULL, 10);
  if ((v = kv_get(toks, ntok, "exp"))) c->exponential_backoff = strcmp(v, "1") == 0;
  if ((v = kv_get(toks, ntok, "mult"))) c->exponential_multiplier = strtod(v, NULL);
  if ((v = kv_get(toks, ntok, "expmax"))) c->exponential_max_wait_ms = strtoll(v, NULL, 10);
  if ((v = kv_get(toks, ntok, "slowns"))) c->slow_call_duration_threshold_ns = strtoll(v, NULL, 10);
  if ((v = kv_get(toks, ntok, "maxwaitms"))) c->max_wait_in_half_open_ms = strtoll(v, NULL, 10);
  if ((v = kv_get(toks, ntok, "after"))) breaker_state_parse(v, &c->transition_after_wait);
  if ((v = kv_get(toks, ntok, "permitted"))) c->permitted_calls_in_half_open = (int32_t)strtol(v, NULL, 10);
  if ((v = kv_get(toks, ntok, "size"))) c->window_size = (int32_t)strtol(v, NULL, 10);
  if ((v = kv_get(toks, ntok, "min"))) c->minimum_calls = (int32_t)strtol(v, NULL, 10);
  if ((v = kv_get(toks, ntok, "type")))
    c->window_type = strcmp(v, "TIME_BASED") == 0 ? BREAKER_TIME_BASED : BREAKER_COUNT_BASED;
  if ((v = kv_get(toks, ntok, "auto"))) c->automatic_transition = strcmp(v, "1") == 0;
  if ((v = kv_get(toks, ntok, "initial"))) breaker_state_parse(v, &c->initial_state);
  c->clock = h_clock;
  c->clock_ctx = h;
  if (h->no_events) {
    c->event_buffer_size = 0;
    return;
  }
  c->listener = h_listener;
  c->listener_ctx = h;
}

static void trace(harness *h, const char *id, int step, const char *op, const char *res, breaker *b) {
  breaker_state st;
  breaker_metrics m;
  breaker_get_snapshot(b, &st, &m);
  printf("%s %d %s r=%s st=%s fr=%" PRIx32 " sr=%" PRIx32
         " b=%d f=%d s=%d sl=%d ss=%d sf=%d "
         "np=%" PRId64 " ev=%s\n",
         id, step, op, res, breaker_state_name(st), bits(m.failure_rate), bits(m.slow_call_rate), m.buffered, m.failed,
         m.successful, m.slow, m.slow_successful, m.slow_failed, m.not_permitted, h->evlen ? h->events : "-");
  h->evlen = 0;
  h->events[0] = '\0';
}

static breaker_outcome outcome_of(const char *k) {
  return k[0] == 'S' ? BREAKER_SUCCESS : k[0] == 'F' ? BREAKER_FAILURE : BREAKER_IGNORED;
}

static const char *run_step(harness *h, breaker *b, char **t, int n) {
  if (strcmp(t[0], "call") == 0 && n >= 3) {
    if (!breaker_try_acquire(b)) return "0";
    breaker_record(b, outcome_of(t[1]), strtoll(t[2], NULL, 10));
    return "1";
  }
  if (strcmp(t[0], "acquire") == 0) return breaker_try_acquire(b) ? "1" : "0";
  if (strcmp(t[0], "record") == 0 && n >= 3) {
    breaker_record(b, outcome_of(t[1]), strtoll(t[2], NULL, 10));
    return "-";
  }
  if (strcmp(t[0], "advance") == 0 && n >= 2) {
    h->now += strtoll(t[1], NULL, 10);
    breaker_tick(b);
    return "-";
  }
  if (strcmp(t[0], "to") == 0 && n >= 2) {
    breaker_state s;
    if (breaker_state_parse(t[1], &s)) return "bad";
    return breaker_transition(b, s) == BREAKER_ERR_ILLEGAL_STATE ? "illegal" : "ok";
  }
  if (strcmp(t[0], "reset") == 0) {
    breaker_reset(b);
    return "-";
  }
  fprintf(stderr, "bad op %s\n", t[0]);
  exit(2);
}

int main(int argc, char **argv) {
  static harness h;
  if (argc == 3 && strcmp(argv[1], "--no-events") == 0) {
    h.no_events = 1;
    argv++;
    argc--;
  }
  if (argc != 2) {
    fprintf(stderr, "usage: %s [--no-events] SCENARIO_FILE\n", argv[0]);
    return 2;
  }
  FILE *in = fopen(argv[1], "r");
  if (!in) {
    perror(argv[1]);
    return 2;
  }
  static char line[8192];
  char id[64] = "";
  char *toks[64];
  breaker *b = NULL;
  int step = 0;
  while (fgets(line, sizeof line, in)) {
    int n = 0;
    for (char *s = strtok(line, " \t\r\n"); s && n < 64; s = strtok(NULL, " \t\r\n")) toks[n++] = s;
    if (n == 0 || toks[0][0] == '#') continue;
    if (strcmp(toks[0], "V") == 0 && n >= 2) {
      breaker_config c;
      char msg[256];
      parse_config(toks + 2, n - 2, &c, &h);
      int rc = breaker_config_validate(&c, msg, sizeof msg);
      printf("%s V %s\n", toks[1], rc ? msg : "ok");
      continue;
    }
    if (strcmp(toks[0], "S") == 0 && n >= 2) {
      breaker_config c;
      char msg[256];
      snprintf(id, sizeof id, "%s", toks[1]);
      parse_config(toks + 2, n - 2, &c, &h);
      const char *start = kv_get(toks + 2, n - 2, "start");
      h.now = start ? strtoll(start, NULL, 10) : 0;
      h.evlen = 0;
      breaker_free(b);
      if (breaker_new("cb", &c, &b, msg, sizeof msg)) {
        fprintf(stderr, "%s: %s\n", id, msg);
        return 2;
      }
      step = 0;
      trace(&h, id, step, "init", "-", b);
      continue;
    }
    if (strcmp(toks[0], "E") == 0) continue;
    if (!b) {
      fprintf(stderr, "step before scenario\n");
      return 2;
    }
    step++;
    const char *res = run_step(&h, b, toks, n);
    trace(&h, id, step, toks[0], res, b);
  }
  breaker_free(b);
  fclose(in);
  return 0;
}
