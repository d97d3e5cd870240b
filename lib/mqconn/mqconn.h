/*
 * mqconn: one connection to RabbitMQ on rabbitmq-c 0.11, over plain TCP (amqp://) or TLS
 * (amqps://): where the broker is, parsed from a URL, and opening a connection that is
 * logged in with channel 1 open. lib/mq builds its publishers and consumers on it.
 *
 * TLS is what managed brokers offer (amqps on 5671). The broker's certificate is verified,
 * always: it must chain to a trusted CA (the system's store, OpenSSL's default paths,
 * /etc/ssl/certs on Debian; or only the PEM bundle tls_ca_file when that is set, for a
 * private CA) and carry the URL's host name. There is no switch to turn verification off:
 * a broker with a self-signed certificate is trusted by giving that certificate as the CA
 * file. No client certificate is sent (brokers authenticate us with user and password).
 *
 * URLs: amqp[s]://user:password@host:port/vhost. User, password and vhost are
 * percent-decoded ("p%40ss" is "p@ss", "%2f" is "/"), so a password holding any of
 * :/@?#% can be given encoded. The port defaults to 5672 (amqp) or 5671 (amqps); an empty
 * vhost means "/"; user and password default to guest/guest.
 *
 * Ownership and threads: mqconn_params is plain data (copy it freely; the log pointer is
 * borrowed). mqconn_open may be called from any thread; the connection it returns belongs
 * to the caller, who must keep it on one thread (rabbitmq-c's rule) and free it with
 * mqconn_drop.
 */
#ifndef FERMATA_MQCONN_H
#define FERMATA_MQCONN_H

#include <amqp.h>
#include <stddef.h>

struct log_sink;

/* Same values as lib/mq's MQ_ERR_INVALID, MQ_ERR_NOMEM and MQ_ERR_DOWN. */
enum {
  MQCONN_OK = 0,
  MQCONN_ERR_INVALID = -1, /* bad URL, field too long, unreadable CA file */
  MQCONN_ERR_NOMEM = -2,
  MQCONN_ERR_DOWN = -3, /* cannot connect, TLS handshake or verification failed, login refused */
};

/* The channel every connection opens; the only one used. */
#define MQCONN_CHANNEL 1

typedef struct mqconn_params {
  char host[256];
  int port;
  char user[128];
  char password[128];
  char vhost[128];
  int tls;                /* 1 for amqps:// */
  char tls_ca_file[512];  /* trust only this PEM bundle; "" = the system's CA store */
  int heartbeat_s;        /* AMQP heartbeat; 0 disables. Default 30. */
  int connect_timeout_ms; /* TCP connect + TLS handshake + login. Default 5000. */
  int rpc_timeout_ms;     /* declares, qos, consume, and the publish confirm. Default 10000. */
  struct log_sink *log;   /* lib/log, borrowed; connection events go there. NULL = silent. */
} mqconn_params;

/* Parses an amqp:// or amqps:// URL into *out with the defaults above. Returns 0 or
 * MQCONN_ERR_INVALID (not such a URL, no host, bad port, a field longer than its buffer). */
int mqconn_params_from_url(const char *url, mqconn_params *out);

/* Sets the password, replacing the URL's (NULL or "": keep it). For deployments that keep
 * the secret out of the URL (AMQP_PASSWORD), so it needs no percent-encoding. Returns 0 or
 * MQCONN_ERR_INVALID (too long). */
int mqconn_set_password(mqconn_params *p, const char *password);

/* Sets the CA bundle TLS connections trust ("" or NULL: the system's store). Refuses a path
 * that is too long or a file this process cannot read (MQCONN_ERR_INVALID), so a typo in the
 * configuration stops the service at start instead of failing every connection later. */
int mqconn_set_ca_file(mqconn_params *p, const char *path);

/* Opens TCP (and TLS), logs in, opens MQCONN_CHANNEL. On success *out is the connection;
 * on failure nothing is left allocated and *why (when why is not NULL) is a static
 * one-line reason for logs ("certificate verify failed", "login refused", ...). Returns 0,
 * MQCONN_ERR_NOMEM or MQCONN_ERR_DOWN. */
int mqconn_open(const mqconn_params *p, amqp_connection_state_t *out, const char **why);

/* Closes politely when the connection is believed healthy (else just frees it) and sets
 * *conn to NULL. *conn may already be NULL. */
void mqconn_drop(amqp_connection_state_t *conn, int healthy);

/* Reads, without blocking, what arrived on a connection nobody read from for a while: that
 * answers the broker's heartbeats and finds a connection the broker closed (missed
 * heartbeats, restart). Returns 0 when it is still usable, -1 when it must be dropped. */
int mqconn_drain_idle(amqp_connection_state_t conn);

/* 1 when the last RPC on conn got a normal reply. */
int mqconn_rpc_ok(amqp_connection_state_t conn);

#endif
