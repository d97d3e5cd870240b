/*
 * mp3_probe [--stream] FILE...: prints, one JSON object per line and file, what lib/mp3
 * makes of each file: the validator's verdict, the raw extracted tags and duration, and
 * the Song Service fields. Used by tests/system/test_mp3_extract.py and handy by hand.
 * By default the file is read into memory (mp3_validate, mp3_extract). With --stream it
 * never is: the file is fed to mp3_check in 64 KB chunks and extracted with
 * mp3_extract_source over pread(), and the object also gives "size", "read_at_calls" and
 * "read_at_bytes" (what read_at was asked for), so `/usr/bin/time -v` compares the peak
 * memory of the two ways (lib/mp3/mp3.h has the numbers).
 * Exit status: 0 when every file was read (whatever the verdicts), 2 on usage or I/O error.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "mp3/mp3.h"

#define PROBE_MAX_FILE (256u * 1024 * 1024)

static int read_file(const char *path, uint8_t **out, size_t *out_len) {
  FILE *f = fopen(path, "rb");
  if (!f) return -1;
  size_t cap = 1 << 16, len = 0;
  uint8_t *data = malloc(cap);
  while (data) {
    size_t n = fread(data + len, 1, cap - len, f);
    len += n;
    if (len < cap) break;
    if (cap >= PROBE_MAX_FILE) {
      free(data);
      data = NULL;
      break;
    }
    uint8_t *grown = realloc(data, cap * 2);
    if (!grown) {
      free(data);
      data = NULL;
      break;
    }
    data = grown;
    cap *= 2;
  }
  int err = ferror(f);
  fclose(f);
  if (!data || err) {
    free(data);
    return -1;
  }
  *out = data;
  *out_len = len;
  return 0;
}

static json_t *describe(const char *path, int vrc, int erc, const mp3_meta *m) {
  mp3_song song;
  const char *reason = mp3_strerror(vrc);
  mp3_song_fields(m, &song);
  json_t *o = json_pack(
      "{s:s, s:i, s:s, s:i, s:{s:s, s:s, s:s, s:s, s:f, s:I, s:I, s:i, s:b},"
      " s:{s:s, s:s, s:s, s:s, s:s}}",
      "file", path, "valid", vrc, "reason", reason, "extract", erc, "meta", "title", m->title, "artist", m->artist,
      "album", m->album, "year", m->year, "duration_s", m->duration_s, "samples", (json_int_t)m->samples, "sample_rate",
      (json_int_t)m->sample_rate, "id3v2_version", m->id3v2_version, "id3v1", m->has_id3v1, "song", "name", song.name,
      "artist", song.artist, "album", song.album, "year", song.year, "duration", song.duration);
  return o;
}

static json_t *probe(const char *path, const uint8_t *data, size_t len) {
  int vrc = mp3_validate(data, len, NULL);
  mp3_meta *m = malloc(sizeof *m); /* 4 KB of text: keep it off the stack */
  if (!m) return NULL;
  int erc = mp3_extract(data, len, m);
  json_t *o = describe(path, vrc, erc, m);
  free(m);
  return o;
}

typedef struct file_source {
  int fd;
  long calls;
  uint64_t asked;
} file_source;

static long file_read_at(void *ud, uint64_t offset, void *buf, size_t cap) {
  file_source *f = ud;
  f->calls++;
  f->asked += cap;
  ssize_t n = pread(f->fd, buf, cap, (off_t)offset);
  return n < 0 ? -1 : (long)n;
}

/* --stream: the checker over 64 KB reads, then extraction over pread. */
static json_t *probe_stream(const char *path) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  struct stat st;
  if (fd < 0) return NULL;
  json_t *o = NULL;
  mp3_check *c = malloc(sizeof *c);
  mp3_meta *m = malloc(sizeof *m);
  uint8_t *chunk = malloc(65536);
  if (!c || !m || !chunk || fstat(fd, &st) != 0) goto done;
  mp3_check_init(c);
  ssize_t n;
  while ((n = read(fd, chunk, 65536)) > 0) (void)mp3_check_feed(c, chunk, (size_t)n);
  if (n < 0) goto done;
  int vrc = mp3_check_end(c);
  file_source fs = {.fd = fd};
  mp3_source src = {.ud = &fs, .size = (uint64_t)st.st_size, .read_at = file_read_at};
  int erc = mp3_extract_source(&src, m);
  o = describe(path, vrc, erc, m);
  if (o && json_object_set_new(o, "size", json_integer((json_int_t)st.st_size)) == 0 &&
      json_object_set_new(o, "read_at_calls", json_integer(fs.calls)) == 0 &&
      json_object_set_new(o, "read_at_bytes", json_integer((json_int_t)fs.asked)) == 0)
    goto done;
  json_decref(o);
  o = NULL;
done:
  free(chunk);
  free(m);
  free(c);
  close(fd);
  return o;
}

int main(int argc, char **argv) {
  int first = argc > 1 && strcmp(argv[1], "--stream") == 0 ? 2 : 1;
  if (argc <= first) {
    fprintf(stderr, "usage: %s [--stream] FILE...\n", argv[0]);
    return 2;
  }
  int status = 0;
  for (int i = first; i < argc; i++) {
    json_t *o;
    if (first == 2) {
      o = probe_stream(argv[i]);
    } else {
      uint8_t *data = NULL;
      size_t len = 0;
      if (read_file(argv[i], &data, &len) != 0) {
        fprintf(stderr, "mp3_probe: cannot read %s\n", argv[i]);
        status = 2;
        continue;
      }
      o = probe(argv[i], data, len);
      free(data);
    }
    char *text = o ? json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
    if (!text) {
      fprintf(stderr, "mp3_probe: cannot encode result for %s\n", argv[i]);
      status = 2;
    } else {
      puts(text);
    }
    free(text);
    json_decref(o);
  }
  return status;
}
