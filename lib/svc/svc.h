/*
 * svc: what every service's main does around its server: block the termination signals
 * before any thread starts (so they are delivered only where we wait for them), ignore
 * SIGPIPE, wait for SIGTERM/SIGINT, and keep glibc's heap from holding on to freed large
 * buffers.
 */
#ifndef FERMATA_SVC_H
#define FERMATA_SVC_H

#include <stddef.h>

/* Call first in main, before creating threads. */
void svc_block_signals(void);

/* glibc raises its mmap threshold after each large block it frees (up to 32 MiB), so after
 * a few 10 MB uploads those buffers come from the heap and their pages stay with the
 * process: the Resource Service and the processor kept ~60 MB after a 10 MB upload run.
 * This fixes the thresholds at 128 KiB (glibc's starting values): every large buffer is
 * mapped and given back on free. Nothing is changed when the environment tunes malloc
 * itself (GLIBC_TUNABLES, MALLOC_MMAP_THRESHOLD_, MALLOC_TRIM_THRESHOLD_ or MALLOC_ARENA_MAX).
 * Call early in main. */
void svc_tune_memory(void);

/* "<service>-<host>-<pid>" into buf (host cut to [A-Za-z0-9.-]), to name this process
 * where replicas must not collide (probe objects, consumer tags). */
void svc_instance_name(const char *service, char *buf, size_t cap);

/* Sleeps ms milliseconds (the drain delay between "not ready" and "stop accepting"). */
void svc_sleep_ms(long long ms);

/* Blocks until SIGTERM or SIGINT; returns the signal number. */
int svc_wait_for_stop(void);

#endif
