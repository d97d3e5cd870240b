/* syncbar: see syncbar.h.
 *
 * `started` counts syncs begun, `done` the highest one finished (they run one at a time,
 * so finishing is in order), `failed` the last one that returned an error. A caller arriving when `started`
 * is S needs sync S+1 or later: the running one (S) may have begun before its write. */
#include "syncbar.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

struct syncbar {
  int fd; /* -1 when disabled */
  syncbar_fn fn;
  void *ud;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  uint64_t started, done;
  uint64_t failed; /* the number of the last sync that failed (0: none) */
  int failure;     /* and its -errno */
  bool running;
};

static int do_syncfs(void *ud, int fd) {
  (void)ud;
  return syncfs(fd) == 0 ? 0 : -errno;
}

int syncbar_new(const char *path, syncbar_fn fn, void *ud, syncbar **out) {
  *out = NULL;
  syncbar *b = calloc(1, sizeof *b);
  if (b == NULL) return -ENOMEM;
  b->fd = -1;
  if (path != NULL && path[0] != '\0') {
    b->fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (b->fd < 0) {
      int e = errno;
      free(b);
      return -e;
    }
  }
  b->fn = fn ? fn : do_syncfs;
  b->ud = ud;
  pthread_mutex_init(&b->mu, NULL);
  pthread_cond_init(&b->cv, NULL);
  *out = b;
  return 0;
}

void syncbar_free(syncbar *b) {
  if (b == NULL) return;
  if (b->fd >= 0) close(b->fd);
  pthread_cond_destroy(&b->cv);
  pthread_mutex_destroy(&b->mu);
  free(b);
}

int syncbar_wait(syncbar *b) {
  if (b->fd < 0) return 0;
  pthread_mutex_lock(&b->mu);
  uint64_t need = b->started + 1;
  int rc = 0;
  while (b->done < need) {
    if (b->running) {
      pthread_cond_wait(&b->cv, &b->mu);
      continue;
    }
    b->running = true;
    uint64_t mine = ++b->started;
    pthread_mutex_unlock(&b->mu);
    int r = b->fn(b->ud, b->fd);
    pthread_mutex_lock(&b->mu);
    b->done = mine;
    if (r != 0) {
      b->failed = mine;
      b->failure = r;
    }
    b->running = false;
    pthread_cond_broadcast(&b->cv);
  }
  /* any sync from `need` on covers our writes; a failure among them may have lost them */
  if (b->failed >= need) rc = b->failure;
  pthread_mutex_unlock(&b->mu);
  return rc;
}

uint64_t syncbar_count(syncbar *b) {
  pthread_mutex_lock(&b->mu);
  uint64_t n = b->done;
  pthread_mutex_unlock(&b->mu);
  return n;
}
