"""codegen/model.py — turn an OpenAPI 3.1 document into the model the C
templates render: structs, schema descriptors, methods, errors, scopes.

Only openapi.yaml is read. Every construct the generator cannot map to the
runtime's descriptor tables (runtime/schema.h) is a hard error naming the
schema, so a contract edit never silently produces wrong C.
"""

import re

C_KEYWORDS = {
    "auto", "break", "case", "char", "const", "continue", "default", "do",
    "double", "else", "enum", "extern", "float", "for", "goto", "if",
    "inline", "int", "long", "register", "restrict", "return", "short",
    "signed", "sizeof", "static", "struct", "switch", "typedef", "union",
    "unsigned", "void", "volatile", "while", "bool", "true", "false",
    # Macros of the standard headers every handler includes: a member named
    # stdout compiles on glibc only because its macro expands to itself.
    "stdin", "stdout", "stderr", "errno",
}

JT = {"null": "ANVIL_JT_NULL", "boolean": "ANVIL_JT_BOOLEAN",
      "integer": "ANVIL_JT_INTEGER", "number": "ANVIL_JT_NUMBER",
      "string": "ANVIL_JT_STRING", "array": "ANVIL_JT_ARRAY",
      "object": "ANVIL_JT_OBJECT"}
ALL_JT = set(JT) - {"integer"}


class SpecError(Exception):
    """A construct in the spec that the generator cannot honour."""


# RPC method names: camelCase parts joined by dots ("getRun", "frames.list"),
# the same pattern as x-smithers-bounds.methodNamePattern, which the runtime
# applies to every frame's method.
METHOD_NAME = re.compile(r"^[a-z][a-zA-Z0-9]*(\.[a-z][a-zA-Z0-9]*)*$")


def snake(name):
    s = re.sub(r"[^A-Za-z0-9]+", "_", name)
    s = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", s)
    s = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", s)
    s = s.strip("_").lower()
    if not s:
        raise SpecError("cannot derive a C name from %r" % name)
    if s[0].isdigit():
        s = "_" + s
    return s


def pascal(method_name):
    """Type-name stem of a method: each dotted part with its first letter
    upper-cased ("frames.list" -> "FramesList", "getRun" -> "GetRun")."""
    return "".join(part[:1].upper() + part[1:] for part in method_name.split("."))


def member_name(json_name):
    n = snake(json_name)
    return n + "_" if n in C_KEYWORDS else n


def c_string(s):
    out = ['"']
    for ch in s:
        o = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif o < 0x20 or o == 0x7f:
            out.append("\\%03o" % o)
        elif o > 0x7e:
            for b in ch.encode("utf-8"):
                out.append("\\%03o" % b)
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def json_text(value):
    import json
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def c_double(v):
    r = repr(float(v))
    return r if ("." in r or "e" in r or "inf" in r) else r + ".0"


class Desc:
    """One anvil_schema descriptor (and, for structs, one C type)."""

    def __init__(self, name, kind):
        self.name = name          # name used in messages
        self.kind = kind          # STRING INTEGER NUMBER BOOLEAN OBJECT ARRAY JSON
        self.nullable = False
        self.enum = []
        self.min_length = -1
        self.max_length = -1
        self.const_json = None
        self.minimum = None
        self.maximum = None
        self.fields = []          # list of Field (OBJECT)
        self.additional = False
        self.items = None         # Desc (ARRAY)
        self.json_types = set()   # JSON
        self.cname = None         # C typedef name for OBJECT / top-level wrappers
        self.ident = None         # C identifier of the descriptor
        self.public = False       # descriptor has external linkage
        self.wrapper = False      # top-level non-object wrapped in a struct
        self.description = ""

    # C type of a value of this descriptor when it sits in a field.
    def value_ctype(self):
        if self.kind == "STRING":
            return "char *"
        if self.kind == "INTEGER":
            return "int64_t "
        if self.kind == "NUMBER":
            return "double "
        if self.kind == "BOOLEAN":
            return "bool "
        if self.kind == "JSON":
            return "cJSON *"
        if self.kind == "OBJECT":
            return self.cname + " "
        if self.kind == "ARRAY":
            if self.cname:
                return self.cname + " "
            return "struct { %s*items; size_t count; } " % self.items.elem_ctype()
        raise SpecError("unknown kind " + self.kind)

    # C type of one array element of this descriptor.
    def elem_ctype(self):
        return self.value_ctype()

    def size_expr(self):
        if self.kind == "STRING":
            return "sizeof(char *)"
        if self.kind == "INTEGER":
            return "sizeof(int64_t)"
        if self.kind == "NUMBER":
            return "sizeof(double)"
        if self.kind == "BOOLEAN":
            return "sizeof(bool)"
        if self.kind == "JSON":
            return "sizeof(cJSON *)"
        if self.kind == "OBJECT" or self.cname:
            return "sizeof(%s)" % self.cname
        return "sizeof(struct { void *items; size_t count; })"

    def pointer_valued(self):
        return self.kind in ("STRING", "JSON")

    def c_json_types(self):
        if not self.json_types:
            return "0"
        return " | ".join(JT[t] for t in sorted(self.json_types))

    def c_enum(self):
        return ", ".join(c_string(e) for e in self.enum)


class Field:
    def __init__(self, json_name, desc, required):
        self.json_name = json_name
        self.member = member_name(json_name)
        self.desc = desc
        self.required = required
        # Presence is carried by the pointer for STRING/JSON; other kinds get
        # a has_ flag when they may be absent (optional) or null (nullable).
        self.has_flag = (not desc.pointer_valued()) and (not required or desc.nullable)


class Method:
    def __init__(self):
        self.name = None
        self.title = ""
        self.scope = None
        self.transport = None
        self.maturity = None
        self.request = None
        self.response = None
        self.handler = None
        self.errors = []
        self.description = ""


class Model:
    def __init__(self, spec):
        self.spec = spec
        self.components = spec.get("components", {}).get("schemas", {}) or {}
        self.ref_cache = {}
        self.descs = []           # every descriptor, dependency order
        self.structs = []         # Descs with a C struct, dependency order
        self.used_cnames = set()
        self.inline_cache = {}
        self.methods = []
        self.errors = []
        self.scopes = []
        self.legacy_grants = []
        self.aliases = []
        self.utility_scopes = []
        self.bounds = {}
        self.api_version = None
        self.statuses = []        # x-anvil-status tables, spec order
        self._building = set()
        self._build()

    # ---------------------------------------------------------------- schemas
    def _fresh_cname(self, base):
        name = "anvil_" + snake(base)
        cand, i = name, 2
        while cand in self.used_cnames:
            cand = "%s_%d" % (name, i)
            i += 1
        self.used_cnames.add(cand)
        return cand

    def _register(self, d):
        d.ident = ("anvil_schema_" + d.cname[len("anvil_"):]) if d.cname else "s_%d" % len(self.descs)
        d.public = bool(d.cname)
        self.descs.append(d)
        if d.cname:
            self.structs.append(d)
        return d

    def resolve_ref(self, ref, top_level=False):
        m = re.match(r"^#/components/schemas/([A-Za-z0-9_.-]+)$", ref)
        if not m:
            raise SpecError("unsupported $ref %r (only #/components/schemas/...)" % ref)
        name = m.group(1)
        if name not in self.components:
            raise SpecError("$ref to unknown schema %r" % name)
        # Objects and arrays are one C type wherever they are used; scalars and
        # "any JSON" get a wrapper struct only where they are a whole payload.
        for key in ((name, None), (name, top_level)):
            if key in self.ref_cache:
                return self.ref_cache[key]
        if name in self._building:
            return self._recursion(name)
        self._building.add(name)
        d = self.schema(self.components[name], name, top_level=top_level, named=True)
        self._building.discard(name)
        shared = d.kind in ("OBJECT", "ARRAY")
        self.ref_cache[(name, None if shared else top_level)] = d
        return d

    def _recursion(self, name):
        """Descriptor where object schema `name` refers to itself (a tree node
        whose children are nodes). A C struct cannot contain itself, so from
        there on the codec checks only that the value is a JSON object and
        keeps it as cJSON; the spec still declares the whole type for every
        other reader. Anything but an object schema recurring is refused."""
        node = self.components[name]
        if not (isinstance(node, dict) and node.get("type") == "object" and node.get("properties")):
            raise SpecError("schema %r refers to itself; only an object schema with properties may "
                            "(its nested occurrences are decoded as JSON objects)" % name)
        return self._json_desc(name, {"object"}, {}, False, False)

    def schema(self, node, name, top_level=False, named=False):
        """Descriptor for schema `node`. `name` is its path-like name."""
        if not isinstance(node, dict):
            if node is True:
                node = {}
            else:
                raise SpecError("%s: schema must be a mapping" % name)
        if "$ref" in node:
            extra = set(node) - {"$ref", "description", "summary"}
            if extra:
                raise SpecError("%s: $ref with sibling keywords %s is not supported" % (name, sorted(extra)))
            return self.resolve_ref(node["$ref"], top_level)
        for unsupported in ("allOf", "not", "if", "patternProperties", "$defs", "dependentSchemas"):
            if unsupported in node:
                raise SpecError("%s: keyword %r is not supported in request/response schemas" % (name, unsupported))

        nullable = bool(node.get("nullable", False))
        types = node.get("type")
        if isinstance(types, str):
            types = [types]
        if types is not None:
            types = list(types)
            if "null" in types:
                nullable = True
                types = [t for t in types if t != "null"]
            for t in types:
                if t not in JT:
                    raise SpecError("%s: unknown type %r" % (name, t))

        variants = node.get("oneOf") or node.get("anyOf")
        if variants is not None and variants and all(self._object_ref(v) for v in variants):
            # A union of object schemas (told apart by a discriminator, say)
            # has no one C struct: the codec checks only that the value is
            # an object and keeps it as cJSON, as for a recursive schema.
            return self._json_desc(name, {"object"} | ({"null"} if nullable else set()), node,
                                   top_level, named)
        if variants is not None:
            mask = set()
            for i, v in enumerate(variants):
                if not isinstance(v, dict) or "type" not in v:
                    raise SpecError("%s: oneOf/anyOf branch %d must be a plain typed schema" % (name, i))
                if v.get("properties") or v.get("required"):
                    raise SpecError("%s: oneOf/anyOf branch %d with properties is not supported" % (name, i))
                vt = v["type"] if isinstance(v["type"], list) else [v["type"]]
                for t in vt:
                    if t not in JT:
                        raise SpecError("%s: unknown type %r in oneOf" % (name, t))
                    mask.add(t)
                if v.get("nullable"):
                    mask.add("null")
            if nullable:
                mask.add("null")
            return self._json_desc(name, mask, node, top_level, named)

        const = node.get("const", None) if "const" in node else None
        has_const = "const" in node
        if types is None or not types:
            if has_const:
                c = node["const"]
                if isinstance(c, bool):
                    types = ["boolean"]
                elif isinstance(c, int):
                    types = ["integer"]
                elif isinstance(c, float):
                    types = ["number"]
                elif isinstance(c, str):
                    types = ["string"]
                elif c is None:
                    types, nullable = [], True
                else:
                    raise SpecError("%s: const of an object or array is not supported" % name)
            else:
                mask = set(ALL_JT) | ({"null"} if nullable or types is None else set())
                return self._json_desc(name, mask if types is None else mask, node, top_level, named)
        if len(types) > 1:
            mask = set(types) | ({"null"} if nullable else set())
            return self._json_desc(name, mask, node, top_level, named)

        t = types[0]
        if t == "object":
            props = node.get("properties") or {}
            addl = node.get("additionalProperties", True)
            if isinstance(addl, dict):
                if addl:
                    raise SpecError("%s: additionalProperties as a schema is not supported" % name)
                addl = True
            if not props and addl:
                return self._json_desc(name, {"object"} | ({"null"} if nullable else set()), node, top_level, named)
            d = Desc(name, "OBJECT")
            d.nullable = nullable
            d.additional = bool(addl)
            d.description = node.get("description", "")
            required = node.get("required") or []
            for r in required:
                if r not in props:
                    raise SpecError("%s: required property %r is not in properties" % (name, r))
            members = set()
            for pname, pnode in props.items():
                child = self.schema(pnode, "%s.%s" % (name, pname))
                f = Field(pname, child, pname in required)
                new_names = [f.member] + (["has_" + f.member] if f.has_flag else [])
                if any(n in members for n in new_names) or len(set(new_names)) != len(new_names):
                    raise SpecError("%s: property %r maps to a C member that already exists" % (name, pname))
                members.update(new_names)
                d.fields.append(f)
            # x-anvil-c-name renames the C type where the schema's own name
            # would collide with a runtime type (Error: the runtime's
            # anvil_error is the error being built, not its wire form).
            d.cname = self._fresh_cname(node.get("x-anvil-c-name") or name)
            return self._register(d)

        if t == "array":
            items = node.get("items", True)
            d = Desc(name, "ARRAY")
            d.nullable = nullable
            d.items = self.schema(items, name + "[]")
            d.description = node.get("description", "")
            if top_level or named:
                d.cname = self._fresh_cname(name)
                d.wrapper = True
            return self._register(d) if d.cname else self._inline(d)

        kind = {"string": "STRING", "integer": "INTEGER", "number": "NUMBER", "boolean": "BOOLEAN"}[t]
        d = Desc(name, kind)
        d.nullable = nullable
        d.description = node.get("description", "")
        if has_const:
            d.const_json = json_text(const)
        if kind == "STRING":
            d.enum = list(node.get("enum") or [])
            for e in d.enum:
                if not isinstance(e, str):
                    raise SpecError("%s: string enum value %r is not a string" % (name, e))
            d.min_length = int(node.get("minLength", -1))
            d.max_length = int(node.get("maxLength", -1))
        elif node.get("enum"):
            raise SpecError("%s: enum is only supported on strings" % name)
        if kind in ("INTEGER", "NUMBER"):
            if "minimum" in node:
                d.minimum = node["minimum"]
            if "maximum" in node:
                d.maximum = node["maximum"]
            if "exclusiveMinimum" in node or "exclusiveMaximum" in node:
                raise SpecError("%s: exclusiveMinimum/Maximum are not supported" % name)
        if top_level:
            d.cname = self._fresh_cname(name)
            d.wrapper = True
            return self._register(d)
        return self._inline(d)

    def _object_ref(self, v):
        """Is branch v a $ref to an object schema with properties?"""
        if not isinstance(v, dict) or set(v) - {"$ref", "description"} or "$ref" not in v:
            return False
        m = re.match(r"^#/components/schemas/([A-Za-z0-9_.-]+)$", v["$ref"])
        target = self.components.get(m.group(1)) if m else None
        return isinstance(target, dict) and target.get("type") == "object" and bool(target.get("properties"))

    def _json_desc(self, name, mask, node, top_level, named):
        d = Desc(name, "JSON")
        d.json_types = set(mask)
        if "number" in d.json_types:
            d.json_types.discard("integer")
        d.nullable = "null" in d.json_types
        d.description = node.get("description", "") if isinstance(node, dict) else ""
        if top_level:
            d.cname = self._fresh_cname(name)
            d.wrapper = True
            return self._register(d)
        return self._inline(d)

    def _inline(self, d):
        """Inline primitive descriptors are shared when identical."""
        if d.kind == "ARRAY":
            key = ("ARRAY", d.nullable, d.items.ident)
        else:
            key = (d.kind, d.nullable, tuple(d.enum), d.min_length, d.max_length,
                   d.const_json, d.minimum, d.maximum, tuple(sorted(d.json_types)))
        if key in self.inline_cache:
            return self.inline_cache[key]
        if d.kind != "ARRAY":
            d.name = {"STRING": "string", "INTEGER": "integer", "NUMBER": "number",
                      "BOOLEAN": "boolean", "JSON": "json"}[d.kind]
        self._register(d)
        self.inline_cache[key] = d
        return d

    # ---------------------------------------------------------------- methods
    def _payload_schema(self, op, method):
        resp = (op.get("responses") or {}).get("200") or (op.get("responses") or {}).get(200)
        if not resp:
            raise SpecError("%s: no 200 response" % method)
        schema = (((resp.get("content") or {}).get("application/json") or {}).get("schema"))
        if not schema:
            raise SpecError("%s: 200 response has no application/json schema" % method)
        candidates = [schema] + list(schema.get("allOf") or [])
        for c in candidates:
            props = c.get("properties") or {}
            if "payload" in props:
                return props["payload"]
        raise SpecError("%s: 200 response schema has no `payload` property" % method)

    def _build(self):
        spec = self.spec
        if not str(spec.get("openapi", "")).startswith("3."):
            raise SpecError("not an OpenAPI 3 document")
        self.api_version = spec.get("x-smithers-api-version", "v1")
        self.bounds = dict(spec.get("x-smithers-bounds") or {})

        errs = spec.get("x-smithers-errors") or {}
        if not errs:
            raise SpecError("x-smithers-errors is missing")
        for code, info in errs.items():
            if not re.match(r"^[A-Z][A-Za-z0-9]*$", code):
                raise SpecError("error code %r is not PascalCase" % code)
            st = int(info["httpStatus"])
            if st < 100 or st > 599:
                raise SpecError("error %s: httpStatus %d out of range" % (code, st))
            self.errors.append({
                "code": code, "enum": "ANVIL_ERR_" + snake(code).upper(),
                "status": st, "legacy": info.get("legacyCode") or snake(code).upper(),
                "description": info.get("description", ""),
                "extension": bool(info.get("x-anvil-extension", False))})
        for need in ("InvalidRequest", "Unauthorized", "Forbidden", "Internal", "PayloadTooLarge"):
            if need not in errs:
                raise SpecError("x-smithers-errors must define %s (the runtime uses it)" % need)
        error_names = set(errs)

        scopes = spec.get("x-smithers-scopes") or {}
        for name, info in scopes.items():
            implies = list((info or {}).get("implies") or [])
            for i in implies:
                if i not in scopes:
                    raise SpecError("scope %s implies unknown scope %s" % (name, i))
            self.scopes.append({"name": name, "description": (info or {}).get("description", ""),
                                "implies": implies})
        for name, grants in (spec.get("x-smithers-legacy-grants") or {}).items():
            for g in grants:
                if g not in scopes:
                    raise SpecError("legacy grant %s names unknown scope %s" % (name, g))
            self.legacy_grants.append({"name": name, "grants": list(grants)})

        seen, c_names, handlers = {}, {}, {}
        for path, item in (spec.get("paths") or {}).items():
            for verb, op in (item or {}).items():
                if not isinstance(op, dict) or "x-smithers-method" not in op:
                    continue
                m = Method()
                m.name = op["x-smithers-method"]
                if not isinstance(m.name, str) or not METHOD_NAME.match(m.name):
                    raise SpecError("method name %r must be camelCase parts joined by dots (%s)"
                                    % (m.name, METHOD_NAME.pattern))
                if m.name in seen:
                    raise SpecError("method %s is defined twice (%s and %s)" % (m.name, seen[m.name], path))
                seen[m.name] = path
                if verb != "post":
                    raise SpecError("%s: RPC methods are POST operations" % path)
                m.title = op.get("summary", m.name)
                m.description = op.get("description", "")
                m.scope = op.get("x-smithers-required-scope")
                if m.scope not in scopes:
                    raise SpecError("%s: x-smithers-required-scope %r is not a declared scope" % (m.name, m.scope))
                m.transport = op.get("x-smithers-transport")
                if m.transport not in ("http", "websocket", "http+websocket"):
                    raise SpecError("%s: x-smithers-transport must be http, websocket or http+websocket" % m.name)
                m.maturity = op.get("x-smithers-maturity", "stable")
                m.errors = list(op.get("x-smithers-errors") or [])
                for e in m.errors:
                    if e not in error_names:
                        raise SpecError("%s: x-smithers-errors names unknown code %s" % (m.name, e))
                body = (((op.get("requestBody") or {}).get("content") or {}).get("application/json") or {}).get("schema")
                if not body:
                    raise SpecError("%s: requestBody has no application/json schema" % m.name)
                # One C name per method (enum, thunk, default handler): a
                # dotted name and a camelCase one can map to the same C name
                # ("frames.list" and "framesList" are both frames_list), and
                # the C would then not compile, or worse, pair the wrong types.
                m.snake = snake(m.name)
                if m.snake in c_names:
                    raise SpecError("methods %s and %s both map to the C name %s; rename one"
                                    % (c_names[m.snake], m.name, m.snake))
                c_names[m.snake] = m.name
                P = pascal(m.name)
                m.request = self._top(body, P + "Request")
                m.response = self._top(self._payload_schema(op, m.name), P + "Response")
                m.handler = op.get("x-anvil-handler") or "anvil_handle_" + m.snake
                if m.handler in handlers:
                    raise SpecError("methods %s and %s both name the handler %s"
                                    % (handlers[m.handler], m.name, m.handler))
                handlers[m.handler] = m.name
                m.enum = "ANVIL_METHOD_" + m.snake.upper()
                self.methods.append(m)
        if not self.methods:
            raise SpecError("no operation carries x-smithers-method")

        names = {m.name for m in self.methods}
        for alias, canonical in (spec.get("x-smithers-legacy-aliases") or {}).items():
            if canonical not in names:
                raise SpecError("legacy alias %s points at unknown method %s" % (alias, canonical))
            if alias in names:
                raise SpecError("legacy alias %s collides with a method name" % alias)
            self.aliases.append({"alias": alias, "canonical": canonical})
        alias_names = {a["alias"] for a in self.aliases}
        for name, scope in (spec.get("x-smithers-utility-scopes") or {}).items():
            if scope not in scopes:
                raise SpecError("utility scope for %s names unknown scope %s" % (name, scope))
            # A method's scope is its operation's; a second entry here would
            # be a second truth that can drift from it.
            if name in names or name in alias_names:
                raise SpecError("x-smithers-utility-scopes lists %s, which is a method or an alias "
                                "(its operation's x-smithers-required-scope applies)" % name)
            self.utility_scopes.append({"method": name, "scope": scope})

        self._collect_statuses()

        entries = [(m.name, i) for i, m in enumerate(self.methods)]
        index = {m.name: i for i, m in enumerate(self.methods)}
        entries += [(a["alias"], index[a["canonical"]]) for a in self.aliases]
        # bsearch in the runtime relies on strcmp order, i.e. byte order.
        self.lookup = sorted(entries, key=lambda e: e[0].encode("utf-8"))

    # --------------------------------------------------------------- statuses
    def _collect_statuses(self):
        """Every string enum marked `x-anvil-status: <c_name>` under
        components.schemas (at any depth of properties / items) becomes a C
        enum and a table of names with a terminal flag each; the terminal
        values are the enum's `x-anvil-terminal` list."""
        seen = {}

        def walk(node, where):
            if not isinstance(node, dict):
                return
            if "x-anvil-terminal" in node and "x-anvil-status" not in node:
                raise SpecError("%s: x-anvil-terminal without x-anvil-status" % where)
            if "x-anvil-status" in node:
                self._status_table(node, where, seen)
            for pname, pnode in (node.get("properties") or {}).items():
                walk(pnode, "%s.%s" % (where, pname))
            if "items" in node:
                walk(node["items"], where + "[]")

        for name, node in self.components.items():
            walk(node, name)

    def _status_table(self, node, where, seen):
        cname = node["x-anvil-status"]
        if not isinstance(cname, str) or not re.match(r"^[a-z][a-z0-9_]*$", cname):
            raise SpecError("%s: x-anvil-status %r must be a lower-case C name" % (where, cname))
        if cname in seen:
            raise SpecError("%s: x-anvil-status %s is already declared by %s" % (where, cname, seen[cname]))
        seen[cname] = where
        values = node.get("enum")
        if node.get("type") != "string" or not values or not all(isinstance(v, str) for v in values):
            raise SpecError("%s: x-anvil-status needs a string schema with an enum" % where)
        terminal = node.get("x-anvil-terminal") or []
        if not isinstance(terminal, list):
            raise SpecError("%s: x-anvil-terminal must be a list of enum values" % where)
        for t in terminal:
            if t not in values:
                raise SpecError("%s: x-anvil-terminal value %r is not in the enum" % (where, t))
        prefix = "ANVIL_" + cname.upper() + "_"
        entries, enumerators = [], set()
        for v in values:
            enumerator = prefix + snake(v).upper()
            if enumerator in enumerators:
                raise SpecError("%s: enum values %r map to the same C name %s" % (where, v, enumerator))
            enumerators.add(enumerator)
            entries.append({"name": v, "enum": enumerator, "terminal": v in terminal})
        self.statuses.append({
            "cname": "anvil_" + cname, "schema": where, "prefix": prefix,
            "table": "anvil_" + cname + "_table", "entries": entries,
            "description": node.get("description", ""), "has_terminal": bool(terminal)})

    def _top(self, node, fallback):
        """Top-level request/response descriptor: always a named C struct."""
        if "$ref" in node:
            d = self.resolve_ref(node["$ref"], top_level=True)
        else:
            d = self.schema(node, fallback, top_level=True)
        if not d.cname:
            raise SpecError("%s: top-level schema did not produce a C type" % fallback)
        return d
