/* storage_render: see storage_render.h. */
#include "storage_render.h"

json_t *storage_render_list(const storage_row *rows, size_t n) {
  json_t *arr = json_array();
  for (size_t i = 0; arr && i < n; i++) {
    const storage_row *s = &rows[i];
    json_t *o = json_pack("{s:I, s:s, s:s, s:s}", "id", (json_int_t)s->id, "storageType", s->type, "bucket", s->bucket,
                          "path", s->path);
    if (!o || json_array_append_new(arr, o) != 0) {
      json_decref(arr);
      arr = NULL;
    }
  }
  return arr;
}
