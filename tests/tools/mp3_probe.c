/*
 * mp3_probe FILE...: prints, one JSON object per line and file, what lib/mp3 makes of
 * each file: the validator's verdict, the raw extracted tags and duration, and the Song
 * Service fields. Used by tests/system/test_mp3_extract.py and handy by hand.
 * Exit status: 0 when every file was read (whatever the verdicts), 2 on usage or I/O error.
 */
#include <stdio.h>
#include <stdlib.h>

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

static json_t *probe(const char *path, const uint8_t *data, size_t len) {
  const char *reason = NULL;
  int vrc = mp3_validate(data, len, &reason);
  mp3_meta *m = malloc(sizeof *m); /* 4 KB of text: keep it off the stack */
  mp3_song song;
  if (!m) return NULL;
  int erc = mp3_extract(data, len, m);
  mp3_song_fields(m, &song);
  json_t *o = json_pack(
      "{s:s, s:i, s:s, s:i, s:{s:s, s:s, s:s, s:s, s:f, s:I, s:I, s:i, s:b},"
      " s:{s:s, s:s, s:s, s:s, s:s}}",
      "file", path, "valid", vrc, "reason", reason, "extract", erc, "meta", "title", m->title, "artist", m->artist,
      "album", m->album, "year", m->year, "duration_s", m->duration_s, "samples", (json_int_t)m->samples, "sample_rate",
      (json_int_t)m->sample_rate, "id3v2_version", m->id3v2_version, "id3v1", m->has_id3v1, "song", "name", song.name,
      "artist", song.artist, "album", song.album, "year", song.year, "duration", song.duration);
  free(m);
  return o;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s FILE...\n", argv[0]);
    return 2;
  }
  int status = 0;
  for (int i = 1; i < argc; i++) {
    uint8_t *data = NULL;
    size_t len = 0;
    if (read_file(argv[i], &data, &len) != 0) {
      fprintf(stderr, "mp3_probe: cannot read %s\n", argv[i]);
      status = 2;
      continue;
    }
    json_t *o = probe(argv[i], data, len);
    free(data);
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
