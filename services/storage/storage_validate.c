/*
 * storage_validate: the field rules of POST /storages.
 *
 * Types are strict (every field must be a JSON string; another type gets the field's
 * "invalid" message) and null counts as missing, as in the Song Service.
 *
 * storageType is case-sensitive, as a Java enum is. The bucket must satisfy S3's naming
 * rules (lib/s3 holds them): the service creates that bucket, so a name S3 would refuse is
 * refused here first. The path starts with '/', as the contract says, and is further kept
 * to what can prefix an object key: the Resource Service builds keys from it, and lib/s3
 * only accepts keys of URL-safe characters without empty or dot segments. So "/" or
 * "/seg/seg" with segments of [A-Za-z0-9-._~], at most 200 characters.
 */
#include <string.h>

#include "s3/s3.h"
#include "storage.h"
#include "text/text.h"

#define MSG_TYPE_MISSING "Storage type is required"
#define MSG_TYPE_INVALID "Storage type must be STAGING or PERMANENT"
#define MSG_BUCKET_MISSING "Bucket is required"
#define MSG_BUCKET_INVALID                                                                   \
  "Bucket must be a valid S3 bucket name (3-63 characters: lowercase letters, digits, dots " \
  "and hyphens, starting and ending with a letter or digit)"
#define MSG_PATH_MISSING "Path is required"
#define MSG_PATH_START "Path must start with /"
#define MSG_PATH_LONG "Path must be at most 200 characters"
#define MSG_PATH_CHARS "Path may contain only letters, digits, '-', '_', '.', '~' and '/'"
#define MSG_PATH_SEGMENTS "Path must not contain empty, '.' or '..' segments or end with /"

bool storage_type_valid(const char *type) {
  return type && (strcmp(type, "STAGING") == 0 || strcmp(type, "PERMANENT") == 0);
}

bool storage_bucket_valid(const char *bucket) { return bucket && s3_valid_bucket_name(bucket); }

static bool path_char_ok(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
         c == '.' || c == '~' || c == '/';
}

const char *storage_path_problem(const char *path) {
  if (!path || path[0] != '/') return MSG_PATH_START;
  if (text_utf8_len(path) > STORAGE_PATH_MAX_CHARS) return MSG_PATH_LONG;
  for (const char *p = path; *p; p++)
    if (!path_char_ok(*p)) return MSG_PATH_CHARS;
  if (strcmp(path, "/") == 0) return NULL;
  /* each segment after a '/' must be non-empty and not "." or ".." */
  for (const char *seg = path + 1;;) {
    size_t n = strcspn(seg, "/");
    if (n == 0 || (n == 1 && seg[0] == '.') || (n == 2 && seg[0] == '.' && seg[1] == '.')) return MSG_PATH_SEGMENTS;
    if (seg[n] == '\0') return NULL;
    seg += n + 1;
  }
}

/* The field's string value, or NULL with its message recorded in errs. */
static const char *field_str(const json_t *body, json_t *errs, const char *field, const char *missing,
                             const char *invalid) {
  json_t *v = json_object_get(body, field);
  if (!v || json_is_null(v)) {
    json_object_set_new(errs, field, json_string(missing));
    return NULL;
  }
  if (!json_is_string(v)) {
    json_object_set_new(errs, field, json_string(invalid));
    return NULL;
  }
  return json_string_value(v);
}

json_t *storage_validate(const json_t *body, storage *out) {
  memset(out, 0, sizeof *out); /* callers see NULL fields even if errs cannot be allocated */
  json_t *errs = json_object();
  if (!errs) return NULL;
  if (!json_is_object(body)) {
    json_object_set_new(errs, "body", json_string("Request body must be a JSON object"));
    return errs;
  }
  const char *type = field_str(body, errs, "storageType", MSG_TYPE_MISSING, MSG_TYPE_INVALID);
  if (type && !storage_type_valid(type))
    json_object_set_new(errs, "storageType", json_string(MSG_TYPE_INVALID));
  else
    out->type = type;
  const char *bucket = field_str(body, errs, "bucket", MSG_BUCKET_MISSING, MSG_BUCKET_INVALID);
  if (bucket && !storage_bucket_valid(bucket))
    json_object_set_new(errs, "bucket", json_string(MSG_BUCKET_INVALID));
  else
    out->bucket = bucket;
  const char *path = field_str(body, errs, "path", MSG_PATH_MISSING, MSG_PATH_START);
  const char *problem = path ? storage_path_problem(path) : NULL;
  if (problem)
    json_object_set_new(errs, "path", json_string(problem));
  else
    out->path = path;
  if (json_object_size(errs) == 0) {
    json_decref(errs);
    return NULL;
  }
  return errs;
}
