"""Conformance of HTTP responses to docs/openapi.yaml.

Two parts, used by conftest.py:

* ``OpenApiValidator`` checks one response (method, path, status, headers, body) against the
  spec: the status must be declared for the operation, the Content-Type must be one that is
  declared (``application/json`` exactly, as API.md requires; other media types by their
  essence, so ``text/plain; version=0.0.4`` is ``text/plain``), declared headers must be
  present when required and match their schema, and a JSON body must validate against the
  response schema (``additionalProperties: false`` and all). Error bodies additionally carry
  ``errorCode`` equal to the status. What the spec states only in prose is applied as well:
  a path that matches no operation is an unknown route (404 in the error shape), a known
  path with an undeclared method is 405 in the error shape, and through the gateway
  ``/actuator/*`` is hidden (404) unless the gateway exposes it.

  Schemas are OpenAPI 3.0 schema objects: ``$ref``s are inlined, ``nullable`` becomes a
  ``null`` type, and the result is checked with jsonschema's Draft 4 validator (OpenAPI 3.0's
  boolean ``exclusiveMinimum``; ``1.0`` is not an integer, ``true`` is not a number).

* ``ResponseRecorder`` wraps ``requests.Session.send`` (every ``requests.get/post/...`` call
  and every ``Service.get/post/delete`` goes through it) and checks each response whose
  URL is one of the watched base URLs (our services and the gateway), keeping the ones that
  do not conform. Responses of streamed requests (``stream=True``) are checked without
  their body, so the test still reads it as it likes.
"""
import contextlib
import json
import os
import re
import threading
import urllib.parse
from collections import Counter

import jsonschema
import yaml

HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def _no_constants(name):
    raise ValueError(f"not JSON: {name}")


class OpenApiValidator:
    def __init__(self, spec_path):
        with open(spec_path, encoding="utf-8") as f:
            self.spec = yaml.safe_load(f)
        self._resolving = set()
        self.operations = []  # (regex, template, path item), literal paths first
        for template, item in self.spec["paths"].items():
            item = self._deref(item)
            rx = "^" + "".join(
                f"(?P<{p[1:-1]}>[^/]*)" if p.startswith("{") else re.escape(p)
                for p in re.split(r"(\{[^}/]+\})", template)) + "$"
            self.operations.append((re.compile(rx), template, item))
        self.operations.sort(key=lambda o: (o[1].count("{"), o[1]))
        self._validators = {}

    # ---- spec handling ----

    def _deref(self, node):
        """The node with every local $ref inlined (the spec has no recursive schemas)."""
        if isinstance(node, dict):
            if "$ref" in node:
                ref = node["$ref"]
                if not ref.startswith("#/"):
                    raise ValueError(f"only local $refs are supported: {ref}")
                if ref in self._resolving:
                    raise ValueError(f"recursive $ref: {ref}")
                target = self.spec
                for part in ref[2:].split("/"):
                    target = target[part.replace("~1", "/").replace("~0", "~")]
                self._resolving.add(ref)
                try:
                    return self._deref(target)
                finally:
                    self._resolving.discard(ref)
            return {k: self._deref(v) for k, v in node.items()}
        if isinstance(node, list):
            return [self._deref(v) for v in node]
        return node

    @classmethod
    def json_schema(cls, schema):
        """An OpenAPI 3.0 schema object (refs inlined) as JSON Schema draft 4."""
        if isinstance(schema, list):
            return [cls.json_schema(s) for s in schema]
        if not isinstance(schema, dict):
            return schema
        out = {}
        for k, v in schema.items():
            if k in ("example", "examples", "description", "nullable", "readOnly", "writeOnly",
                     "deprecated", "xml", "externalDocs", "discriminator"):
                continue
            if k in ("properties", "patternProperties", "definitions"):
                out[k] = {name: cls.json_schema(s) for name, s in v.items()}
            elif k in ("items", "additionalProperties", "not", "allOf", "anyOf", "oneOf"):
                out[k] = cls.json_schema(v)
            else:
                out[k] = v
        if schema.get("nullable"):
            if "type" in out:
                out["type"] = [out["type"], "null"]
            if "enum" in out:
                out["enum"] = list(out["enum"]) + [None]
        return out

    def _validator(self, schema):
        key = json.dumps(schema, sort_keys=True)
        v = self._validators.get(key)
        if v is None:
            v = jsonschema.Draft4Validator(self.json_schema(schema))
            self._validators[key] = v
        return v

    def match(self, path):
        """(template, path item) of the operation path that `path` (no query) matches, or (None, None)."""
        for rx, template, item in self.operations:
            if rx.match(path):
                return template, item
        return None, None

    # ---- checking ----

    def check(self, method, url_path, status, headers, body, origin="service", actuator_exposed=False):
        """Problems (a list of strings; empty when the response conforms).

        url_path: the path as sent, percent-encoded, with or without the query.
        headers: a case-insensitive mapping (requests' CaseInsensitiveDict) or a dict.
        body: bytes, or None when the body was not read (streamed).
        origin: "service" or "gateway"; through the gateway /actuator/* is hidden unless
        actuator_exposed.
        """
        headers = {k.lower(): v for k, v in dict(headers).items()}
        path = urllib.parse.urlsplit(url_path).path or "/"
        method = method.lower()
        template, item = self.match(path)
        if origin == "gateway" and not actuator_exposed and (path == "/actuator" or path.startswith("/actuator/")):
            template, item = None, None
        if origin == "gateway" and path == "/gateway/health":  # the gateway's own liveness, not an API
            return self._check_convention(200, "the gateway's health", status, headers, body, "Health")
        if item is None:
            return self._check_convention(404, "unknown route", status, headers, body)
        op = item.get(method)
        if op is None:
            return self._check_convention(405, f"{method.upper()} not declared for {template}", status, headers, body)
        responses = op.get("responses", {})
        resp = (responses.get(str(status)) or responses.get(f"{str(status)[0]}XX")
                or responses.get(f"{str(status)[0]}xx") or responses.get("default"))
        if resp is None:
            return [f"status {status} not declared for {method.upper()} {template} "
                    f"(declared: {', '.join(sorted(responses))})"]
        return self._check_response(resp, status, headers, body, method)

    def _check_convention(self, expected, why, status, headers, body, schema_name="Error"):
        schema = self._deref({"$ref": f"#/components/schemas/{schema_name}"})
        if status != expected:
            shape = "in the error shape" if schema_name == "Error" else f"({schema_name})"
            return [f"{why}: expected {expected} {shape}, got {status}"]
        return self._check_response({"content": {"application/json": {"schema": schema}}}, status, headers, body, "")

    def _check_response(self, resp, status, headers, body, method):
        problems = []
        for name, h in (resp.get("headers") or {}).items():
            if name.lower() == "content-type":
                continue
            value = headers.get(name.lower())
            if value is None:
                if h.get("required"):
                    problems.append(f"header {name} missing")
                continue
            schema = h.get("schema") or {}
            inst = value
            if schema.get("type") == "integer":
                if not re.fullmatch(r"[0-9]+", value):
                    problems.append(f"header {name}: {value!r} is not an integer")
                    continue
                inst = int(value)
            for e in self._validator(schema).iter_errors(inst):
                problems.append(f"header {name}: {e.message}")
        content = resp.get("content") or {}
        ctype = headers.get("content-type")
        no_body = method == "head" or status in (204, 304)
        if not content:
            if body and not no_body:
                problems.append(f"a body ({len(body)} bytes, {ctype}) where the spec declares none")
            return problems
        if no_body:
            return problems
        if ctype is None:
            return problems + [f"no Content-Type (declared: {', '.join(content)})"]
        media = None
        for declared in content:
            if declared == "application/json":
                if ctype == "application/json":  # exactly that string (API.md)
                    media = declared
            elif ctype.split(";")[0].strip().lower() == declared.lower():
                media = declared
        if media is None:
            return problems + [f"Content-Type {ctype!r} not declared (declared: {', '.join(content)})"]
        if media != "application/json" or body is None:
            return problems
        try:
            doc = json.loads(body.decode("utf-8"), parse_constant=_no_constants)
        except (UnicodeDecodeError, ValueError) as e:
            return problems + [f"body is not JSON ({e}): {body[:80]!r}"]
        schema = content[media].get("schema")
        if schema is not None:
            for e in sorted(self._validator(schema).iter_errors(doc), key=lambda e: list(e.absolute_path)):
                where = "body" + "".join(f"[{p!r}]" for p in e.absolute_path)
                problems.append(f"{where}: {e.message}")
        if status >= 400 and isinstance(doc, dict) and "errorCode" in doc and doc["errorCode"] != str(status):
            problems.append(f"body['errorCode'] is {doc['errorCode']!r}, the status is {status}")
        return problems


def _host_port(url):
    u = urllib.parse.urlsplit(url)
    host = (u.hostname or "").lower()
    if host in ("localhost", "::1"):
        host = "127.0.0.1"
    return host, u.port or (443 if u.scheme == "https" else 80)


class ResponseRecorder:
    """Checks every response from a watched base URL; keeps the non-conforming ones."""

    def __init__(self, validator):
        self.validator = validator
        self.watched = {}          # (host, port) -> origin ("service" or "gateway")
        self.actuator_exposed = os.environ.get("GATEWAY_EXPOSE_ACTUATOR", "0").lower() in ("1", "true", "yes", "on")
        self.failures = []         # dicts: test, method, path, status, origin, problem
        self.seen = Counter()      # (origin, METHOD, template or "(unknown route)", status) -> count
        self.unread = 0            # streamed responses checked without their body
        self._lock = threading.Lock()
        self._original_send = None

    def watch(self, base_url, origin):
        self.watched[_host_port(base_url)] = origin

    def unwatch(self, base_url):
        self.watched.pop(_host_port(base_url), None)

    @contextlib.contextmanager
    def watching(self, base_url, origin="gateway"):
        """Also check responses from base_url while the block runs (e.g. a test's own gateway)."""
        key = _host_port(base_url)
        before = self.watched.get(key)
        self.watched[key] = origin
        try:
            yield self
        finally:
            if before is None:
                self.watched.pop(key, None)
            else:
                self.watched[key] = before

    @contextlib.contextmanager
    def isolated(self):
        """Records made inside the block go to the list yielded, not to the session's."""
        with self._lock:
            saved_failures, saved_seen, saved_unread = self.failures, self.seen, self.unread
            self.failures, self.seen, self.unread = [], Counter(), 0
        mine = self.failures
        try:
            yield mine
        finally:
            with self._lock:
                self.failures, self.seen, self.unread = saved_failures, saved_seen, saved_unread

    def record(self, response, streamed=False):
        req = response.request
        origin = self.watched.get(_host_port(req.url))
        if origin is None:
            return
        parts = urllib.parse.urlsplit(req.url)
        path_q = parts.path + (f"?{parts.query}" if parts.query else "")
        body = None if streamed else response.content
        try:
            problems = self.validator.check(req.method, path_q, response.status_code, response.headers, body,
                                            origin=origin, actuator_exposed=self.actuator_exposed)
        except Exception as e:  # a bug in the checker must show, not break the test
            problems = [f"checker error: {e!r}"]
        template, _ = self.validator.match(parts.path or "/")
        test = os.environ.get("PYTEST_CURRENT_TEST", "?").rsplit(" (", 1)[0]
        with self._lock:
            self.seen[(origin, req.method, template or "(unknown route)", response.status_code)] += 1
            if streamed:
                self.unread += 1
            for p in problems:
                self.failures.append({"test": test, "method": req.method, "path": path_q, "status": response.status_code,
                                      "origin": origin, "template": template or path_q, "problem": p})

    def install(self):
        import requests.sessions
        if self._original_send is not None:
            return
        original = self._original_send = requests.sessions.Session.send
        recorder = self

        def send(session, request, **kwargs):
            response = original(session, request, **kwargs)
            recorder.record(response, streamed=bool(kwargs.get("stream")))
            return response

        send.__wrapped__ = original
        requests.sessions.Session.send = send

    def uninstall(self):
        import requests.sessions
        if self._original_send is not None:
            requests.sessions.Session.send = self._original_send
            self._original_send = None

    def report(self, limit=200):
        """The non-conforming responses, grouped by (method, operation, status, problem)."""
        groups = {}
        for f in self.failures:
            key = (f["origin"], f["method"], f["template"], f["status"], f["problem"])
            groups.setdefault(key, []).append(f)
        lines = []
        for (origin, method, template, status, problem), fs in sorted(groups.items(), key=lambda kv: str(kv[0])):
            ex = fs[0]
            more = f" (x{len(fs)})" if len(fs) > 1 else ""
            lines.append(f"{method} {ex['path'][:120]} -> {status} [{origin}]{more}: {problem}\n"
                         f"    operation {template}; first seen in {ex['test']}")
        if len(lines) > limit:
            lines = lines[:limit] + [f"... and {len(lines) - limit} more"]
        return "\n".join(lines)
