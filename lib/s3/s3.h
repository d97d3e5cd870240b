/* s3: a small S3 client on libcurl (CURLOPT_AWS_SIGV4), for the object store behind the
 * services: buckets, put, streaming get with ranges, head, server-side copy (of any size,
 * through UploadPartCopy), delete, and multipart uploads.
 *
 * Addressing is path-style (ENDPOINT/bucket/key) so loopback emulators (moto, LocalStack)
 * work without DNS tricks. Configuration arrives in an s3_config filled by the caller: this
 * module never reads the environment.
 *
 * Object keys must be URL-safe ([A-Za-z0-9-._~/], no empty or dot segments): libcurl
 * before 8.9 signs the path verbatim, so the module refuses keys it would have to encode.
 * Services generate their keys; never take one from an API client.
 *
 * Errors: every operation returns 0 or a negative s3_err and, when `err` is not NULL,
 * fills an s3_error with the HTTP status, the S3 error code and a one-line message. That
 * message is for logs only: it names buckets and keys and S3 details that API clients must
 * never see. Map the s3_err value to your own API error instead.
 *
 * Integrity of streamed bodies (s3_put_stream, s3_put_file, s3_mpu_put_part): the body
 * cannot be hashed before it is sent, so it goes out aws-chunked with a trailing checksum
 * that lib/s3 computes while the bytes pass (x-amz-content-sha256:
 * STREAMING-UNSIGNED-PAYLOAD-TRAILER, x-amz-trailer: x-amz-checksum-crc32c, 64 KiB chunks).
 * The store recomputes it and refuses a body that does not match (400 BadDigest), so a
 * corrupted stream is never stored. versitygw v1.8.0 verifies this mode
 * (s3api/utils/unsigned-chunk-reader.go: the hasher runs over the decoded bytes and the
 * trailer is compared at the zero chunk), and so does AWS S3.
 * tests/system/test_s3_client.py flips one byte in transit and sees it refused, the old
 * object of that key left as it was. CRC32C
 * (SSE4.2 on x86-64) costs next to nothing; S3_CHECKSUM_SHA256 is the same framing with a
 * SHA-256; S3_CHECKSUM_NONE falls back to UNSIGNED-PAYLOAD (nothing verified) for stores
 * without aws-chunked. Signed chunks (STREAMING-AWS4-HMAC-SHA256-PAYLOAD, which versitygw
 * and AWS also verify) would need the seed signature that libcurl computes internally and
 * an HMAC per chunk: not implemented. Figures in docs/STORAGE.md.
 *
 * Timeouts: timeout_ms bounds a whole request, except where the time depends on the caller
 * or on the object's size: bodies pulled from a read callback (the caller's data may arrive
 * at modem speed), CompleteMultipartUpload, CopyObject and UploadPartCopy. Those are bounded
 * by a low-speed limit instead: less than 1 byte/s for timeout_ms fails them (curl averages
 * the speed over a few seconds: a stall is noticed some seconds after timeout_ms). libcurl
 * cannot interrupt a read() that blocks: a callback waiting for its own data must bound
 * that wait itself and fail.
 *
 * Thread-safety: one s3_client may be used by any number of threads at once. Each call
 * takes a curl easy handle from a small pool (connection and DNS caches live in the
 * handles, so kept-alive connections are reused) and gives it back afterwards.
 *
 * The caller must call curl_global_init(CURL_GLOBAL_DEFAULT) once in main() before
 * s3_new() and curl_global_cleanup() after the last s3_free(): libcurl's global state is
 * not this module's to own.
 */
#ifndef FERMATA_S3_H
#define FERMATA_S3_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum s3_err {
  S3_OK = 0,
  S3_ERR_INVALID = -1,     /* bad argument: bucket name, key, config */
  S3_ERR_NOMEM = -2,       /* allocation failed */
  S3_ERR_NOT_FOUND = -3,   /* no such bucket or key (404) */
  S3_ERR_UNAVAILABLE = -4, /* cannot connect, timeout, connection lost, 5xx, SlowDown */
  S3_ERR_DENIED = -5,      /* 401/403: credentials, signature, access denied */
  S3_ERR_CONFLICT = -6,    /* 409: bucket owned by someone else, bucket not empty */
  S3_ERR_RANGE = -7,       /* 416: the range does not overlap the object */
  S3_ERR_PROTOCOL = -8,    /* any other unexpected answer (our bug or the server's) */
  S3_ERR_ABORTED = -9,     /* the caller's write callback asked to stop */
  S3_ERR_IO = -10,         /* the caller's read callback or file failed */
  S3_ERR_NO_SPACE = -11,   /* 507 InsufficientStorage: the store's disk is full */
} s3_err;

/* Static description of an s3_err value ("not found", ...); never NULL. */
const char *s3_strerror(int code);

/* Details of a failure, for logs only (see the top of this file). */
typedef struct s3_error {
  int code;          /* the s3_err returned */
  long http_status;  /* 0 when no HTTP answer arrived */
  char s3_code[64];  /* S3's <Code>, e.g. "NoSuchKey"; "" when none */
  char message[320]; /* "GET /bucket/key: 404 NoSuchKey: ..." or the transport error */
} s3_error;

/* How streamed bodies are protected (see the top of this file). */
typedef enum s3_checksum {
  S3_CHECKSUM_CRC32C = 0, /* trailing x-amz-checksum-crc32c (the default) */
  S3_CHECKSUM_SHA256 = 1, /* trailing x-amz-checksum-sha256 */
  S3_CHECKSUM_NONE = 2,   /* UNSIGNED-PAYLOAD: the store verifies nothing */
} s3_checksum;

typedef struct s3_config {
  const char *endpoint;    /* "http://127.0.0.1:29000" (http or https, no path) */
  const char *region;      /* "us-east-1" */
  const char *access_key;  /* AWS_ACCESS_KEY_ID */
  const char *secret_key;  /* AWS_SECRET_ACCESS_KEY */
  long connect_timeout_ms; /* TCP (+TLS) connect; 0 means 2000 */
  long timeout_ms;         /* whole request, body included; 0 means 60000 */
  int max_idle_handles;    /* handles kept for reuse; 0 means 8 */
  s3_checksum checksum;    /* for streamed bodies; 0 means S3_CHECKSUM_CRC32C */
} s3_config;

typedef struct s3_client s3_client;

/* Creates a client; copies everything it needs from cfg. Returns 0 and *out, or
 * S3_ERR_INVALID (missing field, endpoint not http(s)://host[:port]) / S3_ERR_NOMEM. */
int s3_new(const s3_config *cfg, s3_client **out);
/* Frees the client and its idle handles. No call may be running. s3_free(NULL) is a no-op. */
void s3_free(s3_client *c);

/* What HEAD or GET learned about an object. */
typedef struct s3_object_info {
  long http_status;        /* 200, or 206 for a range */
  uint64_t content_length; /* bytes in this response's body (the whole object for HEAD) */
  uint64_t total_size;     /* size of the whole object (from Content-Range on a 206) */
  char etag[80];           /* as sent, quotes included; "" when absent */
  char content_type[128];  /* "" when absent */
  char server[64];         /* the Server header ("VERSITYGW", "AmazonS3"); "" when absent */
} s3_object_info;

/* Byte ranges, as HTTP defines them (inclusive). */
typedef enum s3_range_kind {
  S3_RANGE_FROM_TO, /* bytes=first-last */
  S3_RANGE_FROM,    /* bytes=first-       (to the end) */
  S3_RANGE_SUFFIX,  /* bytes=-suffix_len  (the last suffix_len bytes) */
} s3_range_kind;

typedef struct s3_range {
  s3_range_kind kind;
  uint64_t first;
  uint64_t last;
  uint64_t suffix_len;
} s3_range;

/* Receives body bytes of a successful GET. Return 0 to go on, anything else to stop the
 * transfer (the call then returns S3_ERR_ABORTED). */
typedef int (*s3_write_fn)(void *ud, const void *data, size_t len);
/* Supplies upload bytes: fill up to cap bytes of buf, set *got. Return 0, or nonzero on a
 * read failure (the call then returns S3_ERR_IO). *got == 0 before the announced size was
 * reached is also a failure. */
typedef int (*s3_read_fn)(void *ud, void *buf, size_t cap, size_t *got);

/* Creates the bucket. Idempotent: a bucket we already own counts as success. Outside
 * us-east-1 the region goes in a LocationConstraint. */
int s3_create_bucket(s3_client *c, const char *bucket, s3_error *err);
/* *exists = true on 200, false on 404. A bucket owned by someone else gives S3_ERR_DENIED. */
int s3_bucket_exists(s3_client *c, const char *bucket, bool *exists, s3_error *err);
/* s3_bucket_exists that also reports what the answer's headers said (info may be NULL):
 * info->server tells which store answered (see s3_store_kind). */
int s3_bucket_info(s3_client *c, const char *bucket, bool *exists, s3_object_info *info, s3_error *err);

/* Puts len bytes from memory; the body's SHA-256 is sent and signed, so the server
 * rejects corrupted uploads. content_type may be NULL (application/octet-stream). */
int s3_put(s3_client *c, const char *bucket, const char *key, const void *data, size_t len, const char *content_type,
           s3_error *err);
/* s3_put for a caller that has hashed the body already (say, for its own checksum):
 * sha256_hex is the body's SHA-256 as 64 lowercase hex digits, sent and signed as is, so
 * the body is not hashed twice. AWS S3 refuses a body that does not match it
 * (XAmzContentSHA256Mismatch); moto does not check. */
int s3_put_hashed(s3_client *c, const char *bucket, const char *key, const void *data, size_t len,
                  const char *sha256_hex, const char *content_type, s3_error *err);
/* Puts exactly size bytes (at most 5 GiB) pulled from read(), with the trailing checksum
 * of the client's s3_checksum (see the top of this file). read() runs on the caller's
 * thread; the request is bounded by the low-speed limit, not by timeout_ms. The stream is
 * not rewound: no retry here. */
int s3_put_stream(s3_client *c, const char *bucket, const char *key, s3_read_fn read, void *ud, uint64_t size,
                  const char *content_type, s3_error *err);
/* Puts size bytes read from fp's current position (as s3_put_stream). */
int s3_put_file(s3_client *c, const char *bucket, const char *key, FILE *fp, uint64_t size, const char *content_type,
                s3_error *err);

/* Streams the object (or the range, when range is not NULL) to write(). info, when not NULL,
 * is complete before the first write() call, so write() may look at it (e.g. through ud)
 * to send its own headers first. A 0-byte object calls write() never. */
int s3_get(s3_client *c, const char *bucket, const char *key, const s3_range *range, s3_write_fn write, void *ud,
           s3_object_info *info, s3_error *err);
/* HEAD: size, ETag, content type. */
int s3_head(s3_client *c, const char *bucket, const char *key, s3_object_info *info, s3_error *err);
/* Server-side copy (CopyObject, at most S3_COPY_SINGLE_MAX bytes on AWS); a 200 that
 * carries an <Error> body is a failure. */
int s3_copy(s3_client *c, const char *src_bucket, const char *src_key, const char *dst_bucket, const char *dst_key,
            s3_error *err);
/* Deletes the object. Idempotent: a missing key (or bucket) is success. */
int s3_delete(s3_client *c, const char *bucket, const char *key, s3_error *err);

/* ---- Multipart uploads. An upload is created, gets parts 1..10000 (each at least 5 MiB
 * except the last, on AWS and versitygw alike), and is completed with the list of its parts'
 * ETags in ascending order, or aborted. An upload neither completed nor aborted keeps its
 * parts in the store (and on AWS costs money): s3_mpu_list finds them. ---- */

#define S3_UPLOAD_ID_MAX 256
#define S3_PART_MAX 10000
#define S3_COPY_SINGLE_MAX (5ULL * 1024 * 1024 * 1024) /* AWS's CopyObject limit */

typedef struct s3_part {
  int number;        /* 1..S3_PART_MAX */
  char etag[80];     /* as the store sent it, quotes included */
  char checksum[48]; /* base64 CRC32C / SHA-256 of the part as sent in its trailer; "" for none */
} s3_part;

/* CreateMultipartUpload: fills upload_id (NUL-terminated). content_type may be NULL
 * (application/octet-stream); it becomes the object's. Unless the client's checksum is
 * S3_CHECKSUM_NONE, the upload is created with x-amz-checksum-algorithm (CRC32C or SHA256,
 * COMPOSITE): AWS and versitygw then want every part's checksum at complete, which
 * s3_mpu_put_part records in s3_part.checksum and s3_mpu_complete sends. */
int s3_mpu_create(s3_client *c, const char *bucket, const char *key, const char *content_type,
                  char upload_id[S3_UPLOAD_ID_MAX], s3_error *err);
/* UploadPart: streams exactly size bytes pulled from read() as part number (1..10000),
 * protected and timed like s3_put_stream; fills out->number, out->etag and out->checksum. A read()
 * failure returns S3_ERR_IO and the store keeps no such part (uploading the same number
 * again replaces a part anyway). */
int s3_mpu_put_part(s3_client *c, const char *bucket, const char *key, const char *upload_id, int number,
                    s3_read_fn read, void *ud, uint64_t size, s3_part *out, s3_error *err);
/* CompleteMultipartUpload with parts[0..n) (ascending numbers, else S3_ERR_INVALID before
 * anything is sent), each with its checksum when it has one. A 200 with an <Error> body is a failure; a wrong ETag or a part too
 * small gives S3_ERR_INVALID (InvalidPart, EntityTooSmall), an unknown upload
 * S3_ERR_NOT_FOUND. The upload stays after a failure: abort it. The parts must come from
 * s3_mpu_put_part (or s3_copy_part) of a client with the same s3_checksum as the one that
 * created the upload: a checksum the upload was not created for, or one missing, is refused. */
int s3_mpu_complete(s3_client *c, const char *bucket, const char *key, const char *upload_id, const s3_part *parts,
                    size_t n, s3_error *err);
/* AbortMultipartUpload. Idempotent: an unknown upload (NoSuchUpload, 404) is success. */
int s3_mpu_abort(s3_client *c, const char *bucket, const char *key, const char *upload_id, s3_error *err);
/* Called once per unfinished upload; key and upload_id are borrowed for the call. Nonzero
 * stops the walk. */
typedef int (*s3_upload_fn)(void *ud, const char *key, const char *upload_id);
/* ListMultipartUploads of the keys starting with prefix (NULL or "" for all), following the
 * pages (key-marker, upload-id-marker). Returns 0 after the last one, or S3_ERR_ABORTED
 * when each() stopped the walk. versitygw v1.8.0 refuses the upload-id-marker it hands out
 * (400 InvalidArgument: it looks for it among the keys after key-marker); then the walk goes
 * on with key-marker alone, which skips further uploads of the page's last key if that key
 * has several (keys made unique per upload never do; a walk that aborts what it finds can
 * simply run again). */
int s3_mpu_list(s3_client *c, const char *bucket, const char *prefix, s3_upload_fn each, void *ud, s3_error *err);

/* UploadPartCopy: bytes first..last (inclusive) of the source as part number of the
 * upload; fills out. A 200 with an <Error> body is a failure. */
int s3_copy_part(s3_client *c, const char *src_bucket, const char *src_key, const char *dst_bucket, const char *dst_key,
                 const char *upload_id, int number, uint64_t first, uint64_t last, s3_part *out, s3_error *err);
/* Copies an object of size bytes: s3_copy when size <= single_max (S3_COPY_SINGLE_MAX on
 * AWS), else a multipart upload of UploadPartCopy pieces of part_size bytes (at most
 * S3_PART_MAX pieces, else S3_ERR_INVALID) completed in order, with the source's Content-Type;
 * on any failure the upload is aborted, so no part stays behind. */
int s3_copy_sized(s3_client *c, const char *src_bucket, const char *src_key, const char *dst_bucket,
                  const char *dst_key, uint64_t size, uint64_t single_max, uint64_t part_size, s3_error *err);

/* ---- Pure helpers: no I/O, no client. Used by the operations above, by callers that
 * validate input (bucket names for the Storage Service), and by the unit tests. ---- */

/* S3 bucket naming rules: 3-63 chars of [a-z0-9.-], starts and ends with a letter or
 * digit, no "..", not an IPv4 address, no "xn--" prefix, no "-s3alias" suffix. */
bool s3_valid_bucket_name(const char *bucket);
/* Keys this module accepts: 1-1024 chars of [A-Za-z0-9-._~/], no leading '/', no empty,
 * "." or ".." segments. */
bool s3_valid_key(const char *key);
/* The kind of object store a Server header names, for health reports: "versitygw",
 * "aws-s3", "minio", "localstack", "moto", "ceph-rgw", "garage", or "s3-compatible" for any
 * other or no header. Static string, never NULL. */
const char *s3_store_kind(const char *server_header);
/* "aws:amz:REGION:s3" into buf. Returns 0 or S3_ERR_INVALID (region not [a-z0-9-] or too
 * long for buf). */
int s3_sigv4_param(const char *region, char *buf, size_t cap);
/* The Authorization header value of SigV4 (service s3) for a request: amz_date
 * "YYYYMMDDTHHMMSSZ", path and query as sent (query sorted and escaped, or NULL), headers[0..n)
 * "name:value" lines with lowercase names (host and x-amz-date among them; any order, at
 * most 16), payload_hash as sent in x-amz-content-sha256. lib/s3 signs through libcurl
 * except where libcurl 7.88 gets it wrong (UploadPartCopy, see s3_sign.c). Returns 0,
 * S3_ERR_INVALID, or S3_ERR_NOMEM (cap too small). */
int s3_sigv4_authorization(const char *access_key, const char *secret_key, const char *region, const char *amz_date,
                           const char *method, const char *path, const char *query, const char *const *headers,
                           size_t n, const char *payload_hash, char *out, size_t cap);
/* endpoint "/" bucket ["/" key] into buf (key may be NULL). Validates bucket and key.
 * Returns 0, S3_ERR_INVALID, or S3_ERR_NOMEM when buf is too small. */
int s3_url_build(const char *endpoint, const char *bucket, const char *key, char *buf, size_t cap);
/* "bytes=..." for the Range header. Returns 0 or S3_ERR_INVALID (last < first, suffix 0). */
int s3_range_format(const s3_range *range, char *buf, size_t cap);
/* Parses "bytes FIRST-LAST/TOTAL" (TOTAL may be "*"; then *total is 0). Returns 0 or
 * S3_ERR_PROTOCOL. */
int s3_content_range_parse(const char *value, uint64_t *first, uint64_t *last, uint64_t *total);
/* Finds <Error><Code>..</Code><Message>..</Message> in an S3 XML body of len bytes (no NUL
 * needed). Returns true when the body is an error document; code and message (CDATA
 * unwrapped, control characters replaced) are copied, truncated, always NUL-terminated. */
bool s3_error_parse(const char *body, size_t len, char *code, size_t code_cap, char *message, size_t message_cap);
/* The s3_err for an HTTP status and S3 error code ("" or NULL when none): the code wins
 * when it is one we know (e.g. SlowDown -> S3_ERR_UNAVAILABLE), else the status decides. */
int s3_classify(long http_status, const char *s3_code);

/* Percent-encodes s as SigV4 wants a query value: every byte but [A-Za-z0-9-._~] becomes
 * %XX (uppercase). Returns 0 or S3_ERR_NOMEM (buf too small). */
int s3_query_escape(const char *s, char *buf, size_t cap);
/* Bytes that always suffice for s3_complete_xml of n parts (NUL included). */
size_t s3_complete_xml_cap(size_t n);
/* The CompleteMultipartUpload document for parts[0..n) into buf, NUL-terminated, *len its
 * length; a part's non-empty checksum goes in <ChecksumCRC32C> or <ChecksumSHA256> (kind).
 * Returns 0, S3_ERR_INVALID (n == 0 or > S3_PART_MAX, numbers not ascending in
 * 1..S3_PART_MAX, an ETag empty or holding '<', '>' or '&', a checksum not base64 or one
 * given with S3_CHECKSUM_NONE) or S3_ERR_NOMEM (cap too small). */
int s3_complete_xml(const s3_part *parts, size_t n, s3_checksum kind, char *buf, size_t cap, size_t *len);
/* The <UploadId> of an InitiateMultipartUploadResult body of len bytes. Returns 0 or
 * S3_ERR_PROTOCOL (missing, empty, or S3_UPLOAD_ID_MAX bytes or longer). */
int s3_initiate_parse(const char *body, size_t len, char upload_id[S3_UPLOAD_ID_MAX]);
/* The <ETag> of a CopyPartResult (XML entities decoded, quotes kept). 0 or S3_ERR_PROTOCOL. */
int s3_copy_part_parse(const char *body, size_t len, char etag[80]);
/* Where the next page of a ListMultipartUploads starts. */
typedef struct s3_list_next {
  bool truncated;
  char key_marker[1025];
  char upload_id_marker[S3_UPLOAD_ID_MAX];
} s3_list_next;
/* One page of a ListMultipartUploadsResult: calls each() per <Upload> (Key and UploadId,
 * entities decoded) and fills next. Returns 0, S3_ERR_ABORTED (each() returned nonzero),
 * or S3_ERR_PROTOCOL (not such a document, an <Upload> without Key or UploadId, a value too
 * long, truncated without the next markers). */
int s3_list_uploads_parse(const char *body, size_t len, s3_upload_fn each, void *ud, s3_list_next *next);
/* CRC32C (Castagnoli) of data[0..len) continued from crc (0 to start). */
uint32_t s3_crc32c(uint32_t crc, const void *data, size_t len);
/* The bytes on the wire of a size-byte body sent aws-chunked with the given trailing
 * checksum (S3_CHECKSUM_CRC32C or _SHA256; size itself for S3_CHECKSUM_NONE). */
uint64_t s3_chunked_length(uint64_t size, s3_checksum checksum);

#endif
