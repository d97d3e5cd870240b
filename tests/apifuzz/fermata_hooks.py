"""schemathesis hooks for Fermata's API fuzz runs (loaded through SCHEMATHESIS_HOOKS=fermata_hooks
with tests/apifuzz on PYTHONPATH; used by tests/system/test_api_fuzz.py and tests/apifuzz/run.sh).

- POST /resources takes `audio/mpeg`: sent as raw bytes, like application/octet-stream.
- The storages the Storage Service seeded (ids in APIFUZZ_PROTECTED_STORAGES, comma
  separated) are never deleted by a generated DELETE /storages: a matching id is replaced
  by a large id that does not exist, so the request keeps its shape. Without this the run
  would remove the STAGING/PERMANENT storages the rest of a test session uploads into.
- JSON bodies with a string or object key containing U+0000 or an integer outside the signed 64-bit
  range are not sent: the services' JSON parser (jansson) cannot represent them and
  refuses the body as malformed (400), a documented limitation (docs/openapi.yaml,
  conventions) that would otherwise be reported as "valid data rejected" on every run.
"""
import os

import schemathesis

schemathesis.serializer.alias("audio/mpeg", "application/octet-stream")

PROTECTED = {int(x) for x in os.environ.get("APIFUZZ_PROTECTED_STORAGES", "").split(",") if x.strip().isdigit()}
SUBSTITUTE = 2147480000  # never reached by the serial ids of a test stack


def _is_op(ctx, method, path):
    op = getattr(ctx, "operation", None)
    return op is not None and op.method.upper() == method and op.path == path


@schemathesis.hook
def map_query(ctx, query):
    if PROTECTED and _is_op(ctx, "DELETE", "/storages") and isinstance(query, dict) and isinstance(query.get("id"), str):
        parts = []
        for el in query["id"].split(","):
            parts.append(str(SUBSTITUTE) if el.isdigit() and el.isascii() and int(el) in PROTECTED else el)
        query = {**query, "id": ",".join(parts)}
    return query


def _unrepresentable(value):
    if isinstance(value, dict):
        return any("\x00" in str(k) or _unrepresentable(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_unrepresentable(v) for v in value)
    if isinstance(value, str):
        return "\x00" in value
    return isinstance(value, int) and not isinstance(value, bool) and not -2**63 <= value < 2**63


@schemathesis.hook
def filter_body(ctx, body):
    return not _unrepresentable(body)
