/* janitor: see janitor.h. */
#include "janitor.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct janitor {
  resource_svc *svc;
  pthread_t thread;
  bool started, stopping, kicked;
  pthread_mutex_t mu;
  pthread_cond_t cv;
};

janitor *janitor_new(resource_svc *svc) {
  janitor *j = calloc(1, sizeof *j);
  if (!j) return NULL;
  j->svc = svc;
  pthread_mutex_init(&j->mu, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&j->cv, &ca);
  pthread_condattr_destroy(&ca);
  return j;
}

void janitor_free(janitor *j) {
  if (!j) return;
  janitor_stop(j);
  pthread_mutex_destroy(&j->mu);
  pthread_cond_destroy(&j->cv);
  free(j);
}

void janitor_kick(janitor *j) {
  pthread_mutex_lock(&j->mu);
  j->kicked = true;
  pthread_cond_signal(&j->cv);
  pthread_mutex_unlock(&j->mu);
}

void janitor_delete_songs_now(janitor *j, const int32_t *ids, size_t n, const char *request_id) {
  static const useconds_t waits[] = {0, 100000, 300000};
  for (int attempt = 0; attempt < 3; attempt++) {
    if (waits[attempt]) usleep(waits[attempt]);
    if (resource_delete_songs(j->svc, ids, n, request_id) == 0) {
      repo_forget_song_deletes(j->svc->db, ids, n);
      return;
    }
  }
}

/* The queues' rows and their retry schedule are the repo's (resource_repo.c); these say
 * what finishing one means. */
static int delete_songs(void *ud, const int32_t *ids, size_t n) {
  janitor *j = ud;
  return resource_delete_songs(j->svc, ids, n, NULL);
}

static void sweep_songs(janitor *j) { repo_sweep_song_deletes(j->svc->db, delete_songs, j); }

static int delete_object(void *ud, const char *bucket, const char *key) {
  janitor *j = ud;
  s3_error e = {0};
  return s3_delete(j->svc->s3, bucket, key, &e) == S3_OK ? 0 : -1;
}

static void sweep_objects(janitor *j) { repo_sweep_object_deletes(j->svc->db, delete_object, j); }

long janitor_pending(janitor *j) {
  long n;
  return repo_pending_deletes(j->svc->db, &n) == DB_OK ? n : -1;
}

static void *janitor_main(void *arg) {
  janitor *j = arg;
  for (;;) {
    pthread_mutex_lock(&j->mu);
    if (j->stopping) {
      pthread_mutex_unlock(&j->mu);
      break;
    }
    pthread_mutex_unlock(&j->mu);
    sweep_objects(j);
    sweep_songs(j);
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += 2;
    pthread_mutex_lock(&j->mu);
    while (!j->kicked && !j->stopping)
      if (pthread_cond_timedwait(&j->cv, &j->mu, &until) != 0) break;
    j->kicked = false;
    pthread_mutex_unlock(&j->mu);
  }
  return NULL;
}

int janitor_start(janitor *j) {
  if (pthread_create(&j->thread, NULL, janitor_main, j) != 0) return -1;
  j->started = true;
  return 0;
}

void janitor_stop(janitor *j) {
  if (!j || !j->started) return;
  pthread_mutex_lock(&j->mu);
  j->stopping = true;
  pthread_cond_signal(&j->cv);
  pthread_mutex_unlock(&j->mu);
  pthread_join(j->thread, NULL);
  j->started = false;
}
