/*
 * mqconn: see mqconn.h. URL parsing is rabbitmq-c's own (amqp_parse_url, which
 * percent-decodes user, password and vhost), checked and copied into fixed buffers. TLS
 * uses rabbitmq-c's OpenSSL socket with peer and host name verification switched on
 * explicitly, whatever the library's defaults are, and the CAs to trust loaded here (the
 * CA file, else the system's default paths into the socket's SSL_CTX): which CAs a bare
 * rabbitmq-c socket trusts is the library's choice, and we want the system's store.
 */
#include "mqconn.h"

#include <amqp_ssl_socket.h>
#include <amqp_tcp_socket.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>

#define MQCONN_URL_MAX 1024

static int copy_str(char *dst, size_t cap, const char *src) {
  size_t n = strlen(src);
  if (n >= cap) return MQCONN_ERR_INVALID;
  memcpy(dst, src, n + 1);
  return 0;
}

int mqconn_params_from_url(const char *url, mqconn_params *out) {
  char buf[MQCONN_URL_MAX];
  struct amqp_connection_info ci;
  if (!url || !out || copy_str(buf, sizeof buf, url) != 0) return MQCONN_ERR_INVALID;
  memset(out, 0, sizeof *out);
  amqp_default_connection_info(&ci);
  /* amqp_parse_url writes into buf; ci's strings point into it */
  if (amqp_parse_url(buf, &ci) != AMQP_STATUS_OK) return MQCONN_ERR_INVALID;
  if (!ci.host || !*ci.host || ci.port <= 0 || ci.port > 65535) return MQCONN_ERR_INVALID;
  const char *vhost = (ci.vhost && *ci.vhost) ? ci.vhost : "/";
  if (copy_str(out->host, sizeof out->host, ci.host) || copy_str(out->user, sizeof out->user, ci.user) ||
      copy_str(out->password, sizeof out->password, ci.password) || copy_str(out->vhost, sizeof out->vhost, vhost))
    return MQCONN_ERR_INVALID;
  out->port = ci.port;
  out->tls = ci.ssl ? 1 : 0;
  out->heartbeat_s = 30;
  out->connect_timeout_ms = 5000;
  out->rpc_timeout_ms = 10000;
  return 0;
}

int mqconn_set_password(mqconn_params *p, const char *password) {
  if (!p) return MQCONN_ERR_INVALID;
  if (!password || !*password) return 0;
  return copy_str(p->password, sizeof p->password, password);
}

int mqconn_set_ca_file(mqconn_params *p, const char *path) {
  if (!p) return MQCONN_ERR_INVALID;
  if (!path || !*path) {
    p->tls_ca_file[0] = '\0';
    return 0;
  }
  FILE *f = fopen(path, "r");
  if (!f) return MQCONN_ERR_INVALID;
  fclose(f);
  return copy_str(p->tls_ca_file, sizeof p->tls_ca_file, path);
}

int mqconn_rpc_ok(amqp_connection_state_t conn) { return amqp_get_rpc_reply(conn).reply_type == AMQP_RESPONSE_NORMAL; }

void mqconn_drop(amqp_connection_state_t *conn, int healthy) {
  if (!*conn) return;
  if (healthy) {
    amqp_channel_close(*conn, MQCONN_CHANNEL, AMQP_REPLY_SUCCESS);
    amqp_connection_close(*conn, AMQP_REPLY_SUCCESS);
  }
  amqp_destroy_connection(*conn);
  *conn = NULL;
}

int mqconn_drain_idle(amqp_connection_state_t conn) {
  struct timeval zero = {0, 0};
  for (int i = 0; i < 64; i++) {
    amqp_frame_t f;
    int rc = amqp_simple_wait_frame_noblock(conn, &f, &zero);
    if (rc == AMQP_STATUS_TIMEOUT) return 0;
    if (rc != AMQP_STATUS_OK ||
        (f.frame_type == AMQP_FRAME_METHOD &&
         (f.payload.method.id == AMQP_CHANNEL_CLOSE_METHOD || f.payload.method.id == AMQP_CONNECTION_CLOSE_METHOD)))
      return -1;
  }
  return 0;
}

static struct timeval tv_ms(int ms) {
  struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (suseconds_t)(ms % 1000) * 1000};
  return tv;
}

/* A TLS socket that verifies the broker: its chain against the CA file or the system's
 * store, its name against the URL's host. NULL (with *why) when it cannot be set up. */
static amqp_socket_t *tls_socket(amqp_connection_state_t conn, const mqconn_params *p, const char **why) {
  amqp_socket_t *sock = amqp_ssl_socket_new(conn);
  if (!sock) {
    *why = "cannot create a TLS socket";
    return NULL;
  }
  amqp_ssl_socket_set_verify_peer(sock, 1);
  amqp_ssl_socket_set_verify_hostname(sock, 1);
  if (p->tls_ca_file[0]) {
    if (amqp_ssl_socket_set_cacert(sock, p->tls_ca_file) != AMQP_STATUS_OK) {
      *why = "cannot load the CA file (AMQP_TLS_CA_FILE)";
      return NULL;
    }
  } else {
    SSL_CTX *ctx = amqp_ssl_socket_get_context(sock);
    if (!ctx || SSL_CTX_set_default_verify_paths(ctx) != 1) {
      *why = "cannot load the system's CA store";
      return NULL;
    }
  }
  return sock;
}

int mqconn_open(const mqconn_params *p, amqp_connection_state_t *out, const char **why) {
  const char *unused;
  if (!why) why = &unused;
  *why = "";
  amqp_connection_state_t conn = amqp_new_connection();
  if (!conn) {
    *why = "out of memory";
    return MQCONN_ERR_NOMEM;
  }
  amqp_socket_t *sock = p->tls ? tls_socket(conn, p, why) : amqp_tcp_socket_new(conn);
  if (!sock) {
    if (!**why) *why = "cannot create a socket";
    goto fail;
  }
  struct timeval ct = tv_ms(p->connect_timeout_ms), rt = tv_ms(p->rpc_timeout_ms);
  int st = amqp_socket_open_noblock(sock, p->host, p->port, &ct);
  if (st != AMQP_STATUS_OK) {
    /* names the TLS failures too: "certificate verify failed", "hostname verification" */
    *why = amqp_error_string2(st);
    goto fail;
  }
  amqp_set_handshake_timeout(conn, &ct);
  amqp_set_rpc_timeout(conn, &rt);
  amqp_rpc_reply_t r = amqp_login(conn, p->vhost, 0, AMQP_DEFAULT_FRAME_SIZE, p->heartbeat_s, AMQP_SASL_METHOD_PLAIN,
                                  p->user, p->password);
  if (r.reply_type != AMQP_RESPONSE_NORMAL) {
    *why = r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION ? amqp_error_string2(r.library_error)
                                                           : "login refused (user, password or vhost)";
    goto fail;
  }
  amqp_channel_open(conn, MQCONN_CHANNEL);
  if (!mqconn_rpc_ok(conn)) {
    *why = "cannot open a channel";
    goto fail;
  }
  *out = conn;
  return 0;
fail:
  amqp_destroy_connection(conn);
  return MQCONN_ERR_DOWN;
}
