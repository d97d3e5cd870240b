/* s3_sign: what SigV4 signs as we hand it over, and so what must be exactly right before
 * libcurl signs a request: bucket names and keys that need no encoding (libcurl before 8.9
 * signs the path verbatim), the URL built from them, and the payload hash sent as
 * x-amz-content-sha256. (The SigV4 parameter is the client's, in s3.c.)
 */
#include "s3.h"

#include <ctype.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <string.h>

#include "s3_internal.h"

bool s3_valid_bucket_name(const char *b) {
  if (b == NULL) return false;
  size_t n = strlen(b);
  if (n < 3 || n > 63) return false;
  if (!isalnum((unsigned char)b[0]) || !isalnum((unsigned char)b[n - 1])) return false;
  int dots = 0, all_digits_or_dots = 1;
  for (size_t i = 0; i < n; i++) {
    char ch = b[i];
    if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '.' || ch == '-')) return false;
    if (ch == '.') {
      dots++;
      if (b[i + 1] == '.') return false;
    } else if (!(ch >= '0' && ch <= '9')) {
      all_digits_or_dots = 0;
    }
  }
  if (dots == 3 && all_digits_or_dots) return false; /* looks like an IPv4 address */
  if (strncmp(b, "xn--", 4) == 0) return false;
  if (n >= 8 && strcmp(b + n - 8, "-s3alias") == 0) return false;
  return true;
}

bool s3_valid_key(const char *k) {
  if (k == NULL) return false;
  size_t n = strlen(k);
  if (n == 0 || n > 1024 || k[0] == '/') return false;
  size_t seg_start = 0;
  for (size_t i = 0; i <= n; i++) {
    char ch = k[i];
    if (ch == '/' || ch == '\0') {
      size_t seg = i - seg_start;
      /* empty segments would be squashed or kept depending on the server; dot segments
       * are normalised away by curl: either way the stored key would not be ours */
      if (ch == '/' && seg == 0) return false;
      if (seg == 1 && k[seg_start] == '.') return false;
      if (seg == 2 && k[seg_start] == '.' && k[seg_start + 1] == '.') return false;
      if (ch == '\0' && seg == 0) return false; /* trailing '/' */
      seg_start = i + 1;
      continue;
    }
    if (!(isalnum((unsigned char)ch) || ch == '-' || ch == '.' || ch == '_' || ch == '~')) return false;
  }
  return true;
}

int s3_url_build(const char *endpoint, const char *bucket, const char *key, char *buf, size_t cap) {
  if (endpoint == NULL || !s3_valid_bucket_name(bucket)) return S3_ERR_INVALID;
  if (key != NULL && !s3_valid_key(key)) return S3_ERR_INVALID;
  size_t elen = strlen(endpoint);
  while (elen > 0 && endpoint[elen - 1] == '/') elen--;
  int n = key ? snprintf(buf, cap, "%.*s/%s/%s", (int)elen, endpoint, bucket, key)
              : snprintf(buf, cap, "%.*s/%s", (int)elen, endpoint, bucket);
  return (n < 0 || (size_t)n >= cap) ? S3_ERR_NOMEM : 0;
}

void s3__hex_sha256(const void *data, size_t len, char out[65]) {
  unsigned char md[32];
  unsigned int mdlen = 0;
  EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL);
  for (unsigned i = 0; i < 32; i++) snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* SHA-256 of the empty body, what every body-less request announces. */
const char s3__empty_sha256[] = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/* ---------------------------------------------------------------- own SigV4 signer
 * For the requests libcurl 7.88 signs wrongly: it sorts the canonical headers as whole
 * "name:value" lines (fixed in curl 8.10, curl/curl#14370), so x-amz-copy-source-range
 * ('-' < ':') lands before x-amz-copy-source and UploadPartCopy fails with
 * SignatureDoesNotMatch. Those requests are signed here, the canonical headers sorted by name. */

static void hmac256(const void *key, size_t klen, const char *msg, unsigned char out[32]) {
  unsigned int n = 32;
  HMAC(EVP_sha256(), key, (int)klen, (const unsigned char *)msg, strlen(msg), out, &n);
}

static size_t name_len(const char *h) {
  const char *c = strchr(h, ':');
  return c ? (size_t)(c - h) : strlen(h);
}

int s3_sigv4_authorization(const char *access_key, const char *secret_key, const char *region, const char *amz_date,
                           const char *method, const char *path, const char *query, const char *const *headers,
                           size_t n, const char *payload_hash, char *out, size_t cap) {
  if (n == 0 || n > 16 || strlen(amz_date) != 16 || strlen(secret_key) > 200) return S3_ERR_INVALID;
  const char *sorted[16];
  for (size_t i = 0; i < n; i++) { /* insertion sort by name only */
    size_t j = i;
    while (j > 0) {
      size_t a = name_len(sorted[j - 1]), b = name_len(headers[i]);
      int c = strncmp(sorted[j - 1], headers[i], a < b ? a : b);
      if (c < 0 || (c == 0 && a <= b)) break;
      sorted[j] = sorted[j - 1];
      j--;
    }
    sorted[j] = headers[i];
  }
  char canon[4096], names[512] = "";
  int w = snprintf(canon, sizeof canon, "%s\n%s\n%s\n", method, path, query ? query : "");
  if (w < 0 || (size_t)w >= sizeof canon) return S3_ERR_INVALID;
  size_t o = (size_t)w, no = 0;
  for (size_t i = 0; i < n; i++) {
    size_t nl = name_len(sorted[i]);
    const char *v = sorted[i][nl] == ':' ? sorted[i] + nl + 1 : "";
    while (*v == ' ') v++;
    w = snprintf(canon + o, sizeof canon - o, "%.*s:%s\n", (int)nl, sorted[i], v);
    if (w < 0 || (size_t)w >= sizeof canon - o) return S3_ERR_INVALID;
    o += (size_t)w;
    w = snprintf(names + no, sizeof names - no, "%s%.*s", i ? ";" : "", (int)nl, sorted[i]);
    if (w < 0 || (size_t)w >= sizeof names - no) return S3_ERR_INVALID;
    no += (size_t)w;
  }
  w = snprintf(canon + o, sizeof canon - o, "\n%s\n%s", names, payload_hash);
  if (w < 0 || (size_t)w >= sizeof canon - o) return S3_ERR_INVALID;
  o += (size_t)w;

  char scope[128], canon_hash[65], sts[320];
  w = snprintf(scope, sizeof scope, "%.8s/%s/s3/aws4_request", amz_date, region);
  if (w < 0 || (size_t)w >= sizeof scope) return S3_ERR_INVALID;
  s3__hex_sha256(canon, o, canon_hash);
  snprintf(sts, sizeof sts, "AWS4-HMAC-SHA256\n%s\n%s\n%s", amz_date, scope, canon_hash);

  char kdate[220], day[9];
  unsigned char k1[32], k2[32], k3[32], k4[32], sig[32];
  snprintf(kdate, sizeof kdate, "AWS4%s", secret_key);
  snprintf(day, sizeof day, "%.8s", amz_date);
  hmac256(kdate, strlen(kdate), day, k1);
  hmac256(k1, 32, region, k2);
  hmac256(k2, 32, "s3", k3);
  hmac256(k3, 32, "aws4_request", k4);
  hmac256(k4, 32, sts, sig);
  explicit_bzero(kdate, sizeof kdate);
  char hex[65];
  for (int i = 0; i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", sig[i]);
  w = snprintf(out, cap, "AWS4-HMAC-SHA256 Credential=%s/%s,SignedHeaders=%s,Signature=%s", access_key, scope, names,
               hex);
  return (w < 0 || (size_t)w >= cap) ? S3_ERR_NOMEM : 0;
}
