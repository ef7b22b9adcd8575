"""The contract as the conformance kit reads it: openapi.yaml's methods, their
examples, scopes and declared errors, and JSON Schema validation against the
document's own components.

Only the published document is read; nothing here knows Anvil.
"""
import yaml
from jsonschema import Draft202012Validator, RefResolver


class Method:
    """One `x-smithers-method` operation."""

    def __init__(self, spec, path, op):
        self.name = op["x-smithers-method"]
        self.path = path
        self.scope = op.get("x-smithers-required-scope")
        self.transport = op.get("x-smithers-transport", "http+websocket")
        self.maturity = op.get("x-smithers-maturity")
        self.errors = list(op.get("x-smithers-errors") or [])
        body = ((op.get("requestBody") or {}).get("content") or {}).get("application/json") or {}
        self.request_schema = body.get("schema")
        self.request_example = body.get("example")
        self.responses = op.get("responses") or {}
        ok = ((self.responses.get("200") or {}).get("content") or {}).get("application/json") or {}
        self.ok_schema = ok.get("schema")
        self.ok_example = ok.get("example")
        self.spec = spec

    @property
    def over_http(self):
        return "http" in self.transport.split("+")

    @property
    def over_websocket(self):
        return "websocket" in self.transport.split("+")

    def error_examples(self):
        """(status, code, frame) of every error example the operation lists."""
        for status, resp in self.responses.items():
            if status == "200":
                continue
            content = ((resp or {}).get("content") or {}).get("application/json") or {}
            for code, ex in (content.get("examples") or {}).items():
                yield status, code, ex.get("value"), content.get("schema")

    def request_properties(self):
        """The request schema's (properties, required), refs resolved."""
        s = self.spec.resolve(self.request_schema or {})
        return s.get("properties") or {}, s.get("required") or []


class Spec:
    def __init__(self, path):
        with open(path, encoding="utf-8") as f:
            self.doc = yaml.safe_load(f)
        self.resolver = RefResolver.from_schema(self.doc, id_of=lambda s: "")
        self.methods = []
        for path_, item in (self.doc.get("paths") or {}).items():
            op = (item or {}).get("post")
            if op and "x-smithers-method" in op:
                self.methods.append(Method(self, path_, op))
        self.error_map = self.doc.get("x-smithers-errors") or {}
        self.bounds = self.doc.get("x-smithers-bounds") or {}
        self.api_version = (self.doc.get("info") or {}).get("x-smithers-api-version", "v1")

    def status_of(self, code):
        entry = self.error_map.get(code) or {}
        return entry.get("httpStatus")

    def resolve(self, schema):
        """Follow top-level $refs (one schema, not its members)."""
        seen = 0
        while isinstance(schema, dict) and "$ref" in schema and seen < 16:
            _, schema = self.resolver.resolve(schema["$ref"])
            seen += 1
        return schema

    def schema(self, name):
        return (self.doc.get("components") or {}).get("schemas", {}).get(name)

    def problems(self, schema, value):
        """Validation messages of value against schema (empty: valid)."""
        if schema is None:
            return ["no schema to validate against"]
        v = Draft202012Validator(schema, resolver=self.resolver)
        out = []
        for e in sorted(v.iter_errors(value), key=lambda e: list(e.path)):
            where = "$" + "".join("[%d]" % p if isinstance(p, int) else ".%s" % p for p in e.path)
            out.append("%s: %s" % (where, e.message[:200]))
        return out
