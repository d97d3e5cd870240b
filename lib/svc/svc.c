/* svc: see svc.h. */
#include "svc.h"

#include <pthread.h>
#include <signal.h>

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

int svc_wait_for_stop(void) {
  sigset_t set;
  stop_set(&set);
  int sig = 0;
  while (sigwait(&set, &sig) != 0) {
  }
  return sig;
}
