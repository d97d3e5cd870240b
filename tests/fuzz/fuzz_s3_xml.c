/* Fuzzes what lib/s3 reads from the store's XML bodies: ListMultipartUploads pages, the
 * Initiate and CopyPart results and error documents (none NUL-terminated, any bytes). Every
 * value handed out must be NUL-terminated within its buffer, and the list's next markers
 * must be set when the page says it is truncated.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "s3/s3.h"

static int each(void *ud, const char *key, const char *upload_id) {
  size_t *n = ud;
  if (strlen(key) > 1024 || strlen(upload_id) >= S3_UPLOAD_ID_MAX || !key[0] || !upload_id[0]) abort();
  return ++*n > 50; /* stopping early must be safe too */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *body = malloc(size ? size : 1); /* exactly size bytes: reads past the end are caught */
  if (!body) return 0;
  memcpy(body, data, size);
  size_t n = 0;
  s3_list_next next;
  int rc = s3_list_uploads_parse(body, size, each, &n, &next);
  if (rc == 0 && next.truncated && next.key_marker[0] == '\0') abort();
  if (strnlen(next.key_marker, sizeof next.key_marker) == sizeof next.key_marker) abort();
  char id[S3_UPLOAD_ID_MAX], etag[80], code[64], msg[200];
  if (s3_initiate_parse(body, size, id) == 0 && (id[0] == '\0' || strnlen(id, sizeof id) == sizeof id)) abort();
  if (s3_copy_part_parse(body, size, etag) == 0 && strnlen(etag, sizeof etag) == sizeof etag) abort();
  s3_error_parse(body, size, code, sizeof code, msg, sizeof msg);
  if (strnlen(code, sizeof code) == sizeof code || strnlen(msg, sizeof msg) == sizeof msg) abort();
  free(body);
  return 0;
}
