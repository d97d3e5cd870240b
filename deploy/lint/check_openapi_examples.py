"""Checks every example in docs/openapi.yaml against its schema.

openapi-spec-validator checks the document's structure; this checks its content: the
examples are the contract's own messages and shapes, so a schema that rejects one of them
(or an example that drifted from its schema) is a bug in the description.

    python check_openapi_examples.py docs/openapi.yaml
"""
import sys

import yaml
from openapi_schema_validator import OAS30Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4


def main(path):
    with open(path, encoding="utf-8") as f:
        spec = yaml.safe_load(f)
    # Schemas use $ref '#/components/...': rewrite them to point into the whole document,
    # registered under one URI.
    def rewrite_refs(node):
        if isinstance(node, dict):
            return {k: ("urn:openapi" + v if k == "$ref" and v.startswith("#") else rewrite_refs(v))
                    for k, v in node.items()}
        if isinstance(node, list):
            return [rewrite_refs(v) for v in node]
        return node

    registry = Registry().with_resource(
        "urn:openapi", Resource(contents=rewrite_refs(spec), specification=DRAFT4))

    def validator_for(schema):
        return OAS30Validator(rewrite_refs(schema), registry=registry)

    def deref(node):
        while isinstance(node, dict) and "$ref" in node:
            ptr = node["$ref"].lstrip("#/").split("/")
            node = spec
            for part in ptr:
                node = node[part]
        return node

    checked, errors = 0, []

    def check_media(where, media):
        nonlocal checked
        schema = media.get("schema")
        if schema is None:
            return
        examples = []
        if "example" in media:
            examples.append(("example", media["example"]))
        for name, ex in (media.get("examples") or {}).items():
            ex = deref(ex)
            if "value" in ex:
                examples.append((f"examples.{name}", ex["value"]))
        for label, value in examples:
            if isinstance(value, str) and schema.get("format") == "binary":
                continue
            checked += 1
            for err in validator_for(schema).iter_errors(value):
                errors.append(f"{where} {label}: {err.message}")

    def walk_responses(where, responses):
        for code, resp in (responses or {}).items():
            resp = deref(resp)
            for ctype, media in (resp.get("content") or {}).items():
                check_media(f"{where} {code} {ctype}", media)

    for route, item in spec.get("paths", {}).items():
        for method, op in item.items():
            if method not in ("get", "put", "post", "delete", "patch", "head", "options"):
                continue
            where = f"{method.upper()} {route}"
            body = deref(op.get("requestBody") or {})
            for ctype, media in (body.get("content") or {}).items():
                check_media(f"{where} request {ctype}", media)
            walk_responses(where, op.get("responses"))
    for name, resp in (spec.get("components", {}).get("responses") or {}).items():
        for ctype, media in (resp.get("content") or {}).items():
            check_media(f"components.responses.{name} {ctype}", media)

    for e in errors:
        print(f"openapi example: {e}", file=sys.stderr)
    print(f"check_openapi_examples: {checked} examples checked, {len(errors)} errors",
          file=sys.stderr)
    return 1 if errors or checked == 0 else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "docs/openapi.yaml"))
