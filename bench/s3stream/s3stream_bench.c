/* s3stream_bench: MB/s of a streamed PUT (s3_put_stream) to a real store in each integrity
 * mode of lib/s3: trailing CRC32C, trailing SHA-256 (both aws-chunked,
 * STREAMING-UNSIGNED-PAYLOAD-TRAILER) and UNSIGNED-PAYLOAD, rounds interleaved so a noisy
 * machine moves every mode alike; plus the cost of each checksum alone, in memory.
 *
 *   s3stream_bench BUCKET MB ROUNDS     (S3_ENDPOINT, S3_REGION, AWS_ACCESS_KEY_ID,
 *                                        AWS_SECRET_ACCESS_KEY from the environment)
 * Prints one line per mode: the median and best MB/s (1 MB = 10^6 bytes).
 */
#include <curl/curl.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "s3/s3.h"

typedef struct gen {
  uint64_t x;
} gen;

/* xorshift64 bytes: cheap to make, not compressible */
static int gen_read(void *ud, void *buf, size_t cap, size_t *got) {
  gen *g = ud;
  size_t n = cap & ~(size_t)7;
  if (n == 0) n = cap;
  unsigned char *p = buf;
  for (size_t i = 0; i + 8 <= n; i += 8) {
    g->x ^= g->x << 13;
    g->x ^= g->x >> 7;
    g->x ^= g->x << 17;
    memcpy(p + i, &g->x, 8);
  }
  for (size_t i = n & ~(size_t)7; i < n; i++) p[i] = (unsigned char)i;
  *got = n;
  return 0;
}

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static void checksum_cost(size_t mb) {
  size_t len = mb * 1000000;
  unsigned char *buf = malloc(len);
  if (!buf) return;
  gen g = {0x9E3779B97F4A7C15ULL};
  size_t got;
  gen_read(&g, buf, len, &got);
  double t0 = now_s();
  volatile uint32_t crc = s3_crc32c(0, buf, len);
  double t1 = now_s();
  unsigned char md[32];
  unsigned int n;
  EVP_Digest(buf, len, md, &n, EVP_sha256(), NULL);
  double t2 = now_s();
  (void)crc;
  printf("in memory, %zu MB: crc32c %.0f MB/s, sha256 %.0f MB/s\n", mb, (double)mb / (t1 - t0), (double)mb / (t2 - t1));
  free(buf);
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: s3stream_bench BUCKET MB ROUNDS\n");
    return 2;
  }
  const char *bucket = argv[1];
  uint64_t size = strtoull(argv[2], NULL, 10) * 1000000;
  int rounds = atoi(argv[3]);
  if (rounds < 1 || rounds > 50 || size == 0) return 2;
  static const struct {
    s3_checksum ck;
    const char *name;
  } modes[] = {{S3_CHECKSUM_NONE, "UNSIGNED-PAYLOAD"},
               {S3_CHECKSUM_CRC32C, "trailer crc32c"},
               {S3_CHECKSUM_SHA256, "trailer sha256"}};
  enum { NMODES = 3 };
  curl_global_init(CURL_GLOBAL_DEFAULT);
  s3_client *c[NMODES] = {0};
  for (int m = 0; m < NMODES; m++) {
    s3_config cfg = {.endpoint = getenv("S3_ENDPOINT"),
                     .region = getenv("S3_REGION") ? getenv("S3_REGION") : "us-east-1",
                     .access_key = getenv("AWS_ACCESS_KEY_ID"),
                     .secret_key = getenv("AWS_SECRET_ACCESS_KEY"),
                     .checksum = modes[m].ck};
    if (s3_new(&cfg, &c[m]) != 0) {
      fprintf(stderr, "bad configuration\n");
      return 2;
    }
  }
  s3_error e;
  if (s3_create_bucket(c[0], bucket, &e) != 0) {
    fprintf(stderr, "%s\n", e.message);
    return 1;
  }
  double mbs[NMODES][50];
  for (int r = 0; r < rounds; r++) {
    for (int m = 0; m < NMODES; m++) {
      gen g = {0x9E3779B97F4A7C15ULL + (uint64_t)r};
      double t0 = now_s();
      if (s3_put_stream(c[m], bucket, "bench/stream", gen_read, &g, size, NULL, &e) != 0) {
        fprintf(stderr, "%s\n", e.message);
        return 1;
      }
      mbs[m][r] = (double)size / 1e6 / (now_s() - t0);
    }
  }
  for (int m = 0; m < NMODES; m++) {
    qsort(mbs[m], (size_t)rounds, sizeof(double), cmp_double);
    printf("%-18s %5.0f MB: median %6.1f MB/s, best %6.1f MB/s, %d rounds\n", modes[m].name, (double)size / 1e6,
           mbs[m][rounds / 2], mbs[m][rounds - 1], rounds);
  }
  checksum_cost(100);
  s3_delete(c[0], bucket, "bench/stream", &e);
  for (int m = 0; m < NMODES; m++) s3_free(c[m]);
  curl_global_cleanup();
  return 0;
}
