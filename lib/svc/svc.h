/*
 * svc: what every service's main does around its server: block the termination signals
 * before any thread starts (so they are delivered only where we wait for them), ignore
 * SIGPIPE, and wait for SIGTERM/SIGINT.
 */
#ifndef FERMATA_SVC_H
#define FERMATA_SVC_H

/* Call first in main, before creating threads. */
void svc_block_signals(void);

/* Blocks until SIGTERM or SIGINT; returns the signal number. */
int svc_wait_for_stop(void);

#endif
