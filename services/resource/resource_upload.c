/*
 * resource_upload: an upload's bytes go to the object store as they arrive (see
 * resource_upload_stream in resource.h).
 *
 * The first RESOURCE_UPLOAD_HEAD bytes are read before anything else happens: a file that
 * small is checked whole and put from memory, hashed once (as before streaming), and a
 * file that is not an MP3 from its first bytes on is refused before a storage is picked or
 * a byte is sent. Beyond that the bytes flow from the client through a pull callback
 * (which hashes them and runs the incremental MP3 check) into the store:
 * - a declared length up to svc->single_max (5 GiB, S3's limit for one PUT): a single
 *   streaming PUT. Measured against multipart on versitygw (bench/results/2026-12-04-2108
 *   and -2111): a 1 GB upload reached 0.47 of a raw PUT's speed in 8 MiB parts and 0.91 as
 *   one PUT, because completing a multipart upload copies every part into the object;
 * - a declared length over that: a multipart upload whose parts stream straight from the
 *   client (their sizes are known), one at a time: no part is held in memory;
 * - a chunked body (no length): parts are filled in a buffer of one part's size first
 *   (a part's size must be known before it is sent), so such an upload holds one part.
 * Any failure after bytes were sent removes them: the multipart upload is aborted, or the
 * object deleted; no row is written and no message sent.
 */
#include "resource.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "janitor.h"
#include "mp3/mp3.h"
#include "outbox.h"

typedef struct {
  resource_svc *svc;
  resource_body_fn read;
  void *ud;
  EVP_MD_CTX *sha;
  mp3_check chk;
  int mp3_rc;     /* the check's verdict once it failed */
  long body_rc;   /* the body read's failure (< 0) */
  uint64_t total; /* bytes taken from the client */
  uint8_t *head;  /* the first bytes, read before the store is touched */
  size_t head_len, head_pos;
  uint64_t left; /* bytes the current PUT still takes */
  bool eof;      /* the body ended */
} upload;

/* Takes up to cap body bytes into buf: from the head first, then from the client; hashes
 * and checks what came from the client. >0, 0 at the end, -1 on failure (see mp3_rc and
 * body_rc). */
static long take(upload *u, uint8_t *buf, size_t cap) {
  if (u->head_pos < u->head_len) {
    size_t n = u->head_len - u->head_pos < cap ? u->head_len - u->head_pos : cap;
    memcpy(buf, u->head + u->head_pos, n);
    u->head_pos += n;
    return (long)n;
  }
  if (u->eof) return 0;
  long n = u->read(u->ud, buf, cap);
  if (n < 0) {
    u->body_rc = n;
    return -1;
  }
  if (n == 0) {
    u->eof = true;
    int rc = mp3_check_end(&u->chk);
    if (rc != MP3_OK) {
      u->mp3_rc = rc;
      return -1;
    }
    return 0;
  }
  EVP_DigestUpdate(u->sha, buf, (size_t)n);
  int rc = mp3_check_feed(&u->chk, buf, (size_t)n);
  u->total += (uint64_t)n;
  if (rc != MP3_OK) {
    u->mp3_rc = rc;
    return -1;
  }
  return n;
}

/* Finishes a SHA-256 into 64 lowercase hex digits. 0 or -1. */
static int digest_hex(EVP_MD_CTX *c, char out[65]) {
  unsigned char md[32];
  unsigned int n = 0;
  if (EVP_DigestFinal_ex(c, md, &n) != 1 || n != 32) return -1;
  for (unsigned i = 0; i < 32; i++) snprintf(out + 2 * i, 3, "%02x", md[i]);
  return 0;
}

/* s3_read_fn for the PUT in progress: never past the bytes it announced. */
static int pull(void *ud, void *buf, size_t cap, size_t *got) {
  upload *u = ud;
  if (cap > u->left) cap = (size_t)u->left;
  *got = 0;
  if (cap == 0) return 0;
  long n = take(u, buf, cap);
  if (n < 0) return -1;
  *got = (size_t)n;
  u->left -= (uint64_t)n;
  return 0;
}

/* Reads until buf holds cap bytes or the body ended; the count, or -1. */
static long fill(upload *u, uint8_t *buf, size_t cap) {
  size_t have = 0;
  while (have < cap) {
    long n = take(u, buf + have, cap - have);
    if (n < 0) return -1;
    if (n == 0) break;
    have += (size_t)n;
  }
  return (long)have;
}

/* Reads the rest of a body whose declared length was sent: it must end there, and the
 * MP3 check must accept the whole. */
static int finish_body(upload *u) {
  uint8_t b[1];
  long n = take(u, b, 1);
  return n == 0 ? 0 : -1;
}

static int fail_code(upload *u, int s3rc, const s3_error *e, const char *what) {
  if (u->mp3_rc != MP3_OK) return RES_ERR_NOT_MP3;
  if (u->body_rc < 0) return RES_ERR_BODY;
  if (s3rc == S3_OK) return RES_ERR_INTERNAL;
  char q[400];
  log_event(u->svc->lg, LOG_LEVEL_WARN, what, "error=%s detail=%s", s3_strerror(s3rc),
            log_quote(q, sizeof q, e->message));
  return resource_s3_err(s3rc);
}

typedef struct {
  const uint8_t *p;
  size_t len, pos;
} membody;

static int mem_read(void *ud, void *buf, size_t cap, size_t *got) {
  membody *m = ud;
  size_t n = m->len - m->pos < cap ? m->len - m->pos : cap;
  memcpy(buf, m->p + m->pos, n);
  m->pos += n;
  *got = n;
  return 0;
}

/* The store could not remove what a failed PUT may have left (it is down, say): the
 * janitor retries until it can (pending_object_deletes), so no object stays behind. */
static void leave_to_janitor(resource_svc *svc, const resource_row *r) {
  if (repo_pending_object_delete(svc->db, r->bucket, r->key, NULL) != DB_OK)
    log_event(svc->lg, LOG_LEVEL_WARN, "orphan object", "bucket=%s key=%s", r->bucket, r->key);
  if (svc->jn) janitor_kick(svc->jn);
}

/* A multipart upload of the rest of the body, part 1 included. */
static int put_multipart(upload *u, const resource_row *r, int64_t length, int *out) {
  resource_svc *svc = u->svc;
  uint64_t part = svc->part_bytes;
  char upload_id[S3_UPLOAD_ID_MAX];
  s3_error e = {0};
  int rc = s3_mpu_create(svc->s3, r->bucket, r->key, "audio/mpeg", upload_id, &e);
  if (rc != S3_OK) {
    *out = fail_code(u, rc, &e, "upload to object store failed");
    return -1;
  }
  int64_t guard;
  if ((rc = repo_upload_started(svc->db, r->bucket, r->key, upload_id, svc->abandon_after_s, &guard)) != DB_OK) {
    s3_mpu_abort(svc->s3, r->bucket, r->key, upload_id, &e);
    *out = RES_ERR_DB;
    return -1;
  }
  s3_part *parts = NULL;
  size_t nparts = 0, capparts = 0;
  uint8_t *buf = NULL; /* chunked bodies only: one part's bytes */
  int res = RES_OK;
  for (;;) {
    uint64_t size;
    if (length >= 0) {
      size = (uint64_t)length - (u->total - (u->head_len - u->head_pos));
      if (size == 0 && nparts > 0) break;
      if (size > part) size = part;
    } else {
      if (!buf && !(buf = malloc(part))) {
        res = RES_ERR_INTERNAL;
        break;
      }
      long n = fill(u, buf, part);
      if (n < 0) {
        res = fail_code(u, S3_OK, &e, "");
        break;
      }
      if (n == 0 && nparts > 0) break;
      size = (uint64_t)n;
    }
    if (nparts == capparts) {
      size_t nc = capparts ? capparts * 2 : 16;
      s3_part *np = realloc(parts, nc * sizeof *np);
      if (!np) {
        res = RES_ERR_INTERNAL;
        break;
      }
      parts = np;
      capparts = nc;
    }
    if (nparts == 10000) { /* S3's limit: the configured maximum upload keeps us under it */
      res = RES_ERR_INTERNAL;
      break;
    }
    membody m = {.p = buf, .len = (size_t)size};
    u->left = size;
    rc = length >= 0 ? s3_mpu_put_part(svc->s3, r->bucket, r->key, upload_id, (int)nparts + 1, pull, u, size,
                                       &parts[nparts], &e)
                     : s3_mpu_put_part(svc->s3, r->bucket, r->key, upload_id, (int)nparts + 1, mem_read, &m, size,
                                       &parts[nparts], &e);
    if (rc != S3_OK) {
      res = fail_code(u, rc, &e, "upload of a part to object store failed");
      break;
    }
    nparts++;
    if (length < 0 && size < part) break; /* the body ended inside this part */
  }
  free(buf);
  if (res == RES_OK && length >= 0 && finish_body(u) != 0) res = fail_code(u, S3_OK, &e, "");
  if (res == RES_OK && length < 0 && !u->eof && finish_body(u) != 0) res = fail_code(u, S3_OK, &e, "");
  if (res == RES_OK) {
    rc = s3_mpu_complete(svc->s3, r->bucket, r->key, upload_id, parts, nparts, &e);
    if (rc != S3_OK) res = fail_code(u, rc, &e, "completing the upload in object store failed");
  }
  free(parts);
  if (res != RES_OK) {
    s3_error ae = {0};
    if (s3_mpu_abort(svc->s3, r->bucket, r->key, upload_id, &ae) == S3_OK) {
      repo_upload_done(svc->db, guard); /* if this fails, the janitor's abort finds nothing: fine */
    } else {
      repo_upload_abort_now(svc->db, guard); /* the janitor retries until the store takes it */
      if (svc->jn) janitor_kick(svc->jn);
    }
    *out = res;
    return -1;
  }
  repo_upload_done(svc->db, guard);
  return 0;
}

/* Puts the body into r->bucket/r->key; RES_OK or the RES_ERR_* to answer. */
static int put_body(upload *u, const resource_row *r, int64_t length) {
  resource_svc *svc = u->svc;
  s3_error e = {0};
  int rc;
  if (u->eof) { /* all of it is in the head: checked whole, put from memory */
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    char hex[65];
    bool ok = c && EVP_MD_CTX_copy_ex(c, u->sha) == 1 && digest_hex(c, hex) == 0; /* u->sha goes on */
    EVP_MD_CTX_free(c);
    if (!ok) return RES_ERR_INTERNAL;
    rc = s3_put_hashed(svc->s3, r->bucket, r->key, u->head, u->head_len, hex, "audio/mpeg", &e);
    u->head_pos = u->head_len;
    return rc == S3_OK ? RES_OK : fail_code(u, rc, &e, "upload to object store failed");
  }
  if (length >= 0 && (uint64_t)length <= svc->single_max) {
    u->left = (uint64_t)length;
    rc = s3_put_stream(svc->s3, r->bucket, r->key, pull, u, (uint64_t)length, "audio/mpeg", &e);
    if (rc == S3_OK && finish_body(u) == 0) return RES_OK;
    int res = fail_code(u, rc, &e, "upload to object store failed");
    s3_error de = {0}; /* nothing half-made stays: a PUT cut short may have left an object, too */
    if (s3_delete(svc->s3, r->bucket, r->key, &de) != S3_OK) leave_to_janitor(svc, r);
    return res;
  }
  int res = RES_OK;
  return put_multipart(u, r, length, &res) == 0 ? RES_OK : res;
}

static int make_row(resource_svc *svc, const char *request_id, const trace_ctx *trace, resource_row *r) {
  storage_loc loc;
  if (storages_pick(svc->st, "STAGING", request_id, trace, &loc, NULL) != 0) return RES_ERR_NO_STORAGE;
  *r = (resource_row){.storage_id = loc.id};
  snprintf(r->state, sizeof r->state, "STAGING");
  snprintf(r->bucket, sizeof r->bucket, "%s", loc.bucket);
  if (resource_make_key(loc.path, NULL, r->key, sizeof r->key) != 0) {
    log_event(svc->lg, LOG_LEVEL_ERROR, "cannot build an object key from the storage path", "storage_id=%lld",
              (long long)loc.id);
    return RES_ERR_INTERNAL;
  }
  return RES_OK;
}

int resource_upload_stream(resource_svc *svc, resource_body_fn read, void *ud, int64_t length, const char *request_id,
                           const trace_ctx *trace, int32_t *id, const char **why) {
  *why = NULL;
  upload u = {.svc = svc, .read = read, .ud = ud};
  mp3_check_init(&u.chk);
  u.sha = EVP_MD_CTX_new();
  size_t head_cap = length >= 0 && (uint64_t)length < RESOURCE_UPLOAD_HEAD ? (size_t)length + 1 : RESOURCE_UPLOAD_HEAD;
  u.head = malloc(head_cap);
  int res = RES_OK;
  if (!u.sha || !u.head || EVP_DigestInit_ex(u.sha, EVP_sha256(), NULL) != 1) {
    res = RES_ERR_INTERNAL;
    goto out;
  }
  /* the head: decides small files whole and bad ones before the store is touched */
  long n = fill(&u, u.head, head_cap);
  if (n < 0) {
    res = fail_code(&u, S3_OK, NULL, "");
    goto out;
  }
  u.head_len = (size_t)n;
  if (!u.eof && length >= 0 && (uint64_t)length <= u.head_len) {
    if (finish_body(&u) != 0) { /* reads the end: runs the whole-file check */
      res = fail_code(&u, S3_OK, NULL, "");
      goto out;
    }
  }
  resource_row r;
  if ((res = make_row(svc, request_id, trace, &r)) != RES_OK) goto out;
  trace_span span; /* the PUT or the multipart upload, as one object store call */
  resource_s3_span(svc, &span, trace, "s3 put", r.bucket);
  res = put_body(&u, &r, length);
  resource_s3_span_end(svc, &span, res == RES_OK ? S3_OK : S3_ERR_IO);
  if (res != RES_OK) goto out;
  r.size = u.total;
  char sha[65];
  if (digest_hex(u.sha, sha) != 0) {
    res = RES_ERR_INTERNAL;
    goto out;
  }
  res = resource_commit_upload(svc, &r, sha, request_id, trace, id);
out:
  if (res == RES_ERR_NOT_MP3) *why = mp3_strerror(u.mp3_rc);
  free(u.head);
  EVP_MD_CTX_free(u.sha);
  return res;
}
