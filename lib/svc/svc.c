/* svc: see svc.h. */
#include "svc.h"

#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static void stop_set(sigset_t *set) {
  sigemptyset(set);
  sigaddset(set, SIGTERM);
  sigaddset(set, SIGINT);
}

void svc_block_signals(void) {
  signal(SIGPIPE, SIG_IGN);
  sigset_t set;
  stop_set(&set);
  pthread_sigmask(SIG_BLOCK, &set, NULL);
}

void svc_tune_memory(void) {
  static const char *const own[] = {"GLIBC_TUNABLES", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_",
                                    "MALLOC_ARENA_MAX"};
  for (size_t i = 0; i < sizeof own / sizeof own[0]; i++)
    if (getenv(own[i])) return;
  mallopt(M_MMAP_THRESHOLD, 128 * 1024);
  mallopt(M_TRIM_THRESHOLD, 128 * 1024);
}

int svc_wait_for_stop(void) {
  sigset_t set;
  stop_set(&set);
  int sig = 0;
  while (sigwait(&set, &sig) != 0) {}
  return sig;
}

void svc_sleep_ms(long long ms) {
  if (ms <= 0) return;
  struct timespec ts = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0) {}
}

void svc_instance_name(const char *service, char *buf, size_t cap) {
  char host[64] = "";
  if (gethostname(host, sizeof host) != 0) host[0] = '\0';
  host[sizeof host - 1] = '\0';
  size_t j = 0;
  for (size_t i = 0; host[i] && j < 40; i++)
    if (isalnum((unsigned char)host[i]) || host[i] == '.' || host[i] == '-') host[j++] = host[i];
  host[j] = '\0';
  snprintf(buf, cap, "%s-%s-%ld", service, j ? host : "host", (long)getpid());
}
