"""codegen/clients_gen.py — openapi.yaml -> generated/clients/python/ and
generated/clients/typescript/ (the Python and TypeScript clients).

anvil_codegen.py calls render() with the parsed spec and the C model (for the
method list it has already checked: names, scopes, transports, errors, the
payload schema of each 200 response, the run-status table). This module turns
the JSON Schemas themselves into Python TypedDicts and TypeScript types, and
renders templates/clients/*.j2, which hold the hand-written transport and
stream code (docs/clients.md). Like the C, the output is deterministic so
`--check` compares it byte for byte; stale() names client files no longer
written.
"""

import keyword
import os
import re
import textwrap

import model as modelmod

# The folders under the generator's --out that belong to these clients, and
# the files written there (path relative to --out -> template).
OUTPUTS = [
    ("clients/python/anvil_client.py", "clients/python_client.py.j2"),
    ("clients/typescript/anvil_client.ts", "clients/typescript_client.ts.j2"),
]
CLIENT_DIRS = ["clients/python", "clients/typescript"]

# Methods the clients expose as event streams instead of one-shot calls. The
# spec does not yet say which methods stream (WebSocket events have no place
# in OpenAPI); the stream code in the templates speaks what the server sends
# today (docs/websocket.md). Any other WebSocket-only method is a one-shot
# request over a socket of its own.
STREAM_METHODS = ("streamRunEvents", "streamDevTools")

# Members of the TypeScript client class that a method name must not shadow.
TS_RESERVED = {"rpc", "rpcRaw", "connect", "close", "closed", "baseUrl", "token", "fetchImpl",
               "WebSocketImpl", "headers", "client", "streamRunEventsResilient", "constructor"}
PY_RESERVED = {"call", "close", "connect", "base_url", "ws_url", "token", "timeout", "headers",
               "client_info"}

# Type names a component may not take in the generated module: the
# language's own globals, the typing names the module imports, and the
# module's hand-written classes. Such a component gets the suffix "Schema"
# (the spec's `Error` is `ErrorSchema` in both clients).
TS_GLOBAL_TYPES = {
    "Error", "Array", "Object", "String", "Number", "Boolean", "Symbol", "BigInt", "Function",
    "Record", "Partial", "Required", "Readonly", "Pick", "Omit", "Map", "Set", "Date", "Promise",
    "RegExp", "JSON", "Math", "Response", "Request", "Headers", "HeadersInit", "URL", "WebSocket",
    "Event", "MessageEvent", "AbortSignal", "AbortController", "AsyncGenerator",
    "GatewayRpcError", "GatewayEventFrame", "GatewayErrorBody", "GatewayResponseFrame",
    "GatewayRpcRequestMap", "GatewayRpcResponseMap", "GatewayRpcMethod", "GatewayRpcParams",
    "GatewayRpcPayload", "GatewayRpcErrorCode", "GatewayMethodInfo", "GatewayBackoffOptions",
    "SmithersGatewayConnection", "SmithersGatewayClient", "SmithersGatewayClientOptions",
    "GatewayStreamReconnectEvent", "StreamRunEventsResilientOptions", "StreamRunEventPayload",
    "AnvilClient", "Pending"}
PY_GLOBAL_TYPES = {
    "Any", "Callable", "Dict", "Iterator", "List", "Literal", "Optional", "TypedDict", "Union",
    "NotRequired", "Required", "TypeAlias", "AnvilClient", "AnvilRpcError", "AnvilTransportError",
    "AnvilStreamError", "MethodInfo", "ERRORS", "METHODS", "ERROR_CLASSES", "API_VERSION"}


def py_name(method):
    n = modelmod.snake(method)
    return n + "_" if keyword.iskeyword(n) else n


def ts_name(method):
    parts = method.split(".")
    return parts[0] + "".join(p[:1].upper() + p[1:] for p in parts[1:])


def pascal_part(name):
    s = re.sub(r"[^A-Za-z0-9]+", " ", name).title().replace(" ", "")
    return s if s and not s[0].isdigit() else "T" + s


def comment_lines(text, width=76):
    """Spec prose wrapped for a comment; `*/` cannot end a TypeScript one."""
    text = " ".join(str(text or "").split()).replace("*/", "* /")
    return textwrap.wrap(text, width) if text else []


def py_doc_lines(text, width=72):
    """comment_lines for Python docstrings and # comments: backslashes and
    triple quotes cannot end or bend a docstring."""
    return [line.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
            for line in comment_lines(text, width)]


def ts_string(s):
    import json
    return json.dumps(s, ensure_ascii=False)


def _ref_name(ref):
    m = re.match(r"^#/components/schemas/([A-Za-z0-9_.-]+)$", ref)
    if not m:
        raise modelmod.SpecError("unsupported $ref %r (only #/components/schemas/...)" % ref)
    return m.group(1)


def _types_of(node):
    t = node.get("type")
    if t is None:
        return None
    return list(t) if isinstance(t, list) else [t]


class TsTypes:
    """JSON Schema -> TypeScript type expressions (inline; components are
    named by the template, under the names in `names`)."""

    def __init__(self, components, names):
        self.components = components
        self.names = names

    def expr(self, node, indent=""):
        if node is True or node == {} or node is None:
            return "unknown"
        if not isinstance(node, dict):
            return "unknown"
        if "$ref" in node:
            return self.names[_ref_name(node["$ref"])]
        nullable = bool(node.get("nullable"))
        if "const" in node:
            out = ts_string(node["const"])
            return out + (" | null" if nullable else "")
        for key, joiner in (("oneOf", " | "), ("anyOf", " | "), ("allOf", " & ")):
            if key in node:
                parts = []
                for branch in node[key]:
                    p = self.expr(branch, indent)
                    if p not in parts:
                        parts.append(p)
                own = {k: v for k, v in node.items() if k in ("properties", "type")}
                if own and key == "allOf":
                    parts.append(self.expr(own, indent))
                out = "(" + joiner.join(parts) + ")" if len(parts) > 1 else parts[0]
                return out + (" | null" if nullable else "")
        types = _types_of(node)
        if types is None:
            types = ["object"] if "properties" in node else None
        if types is None:
            return "unknown"
        parts = []
        for t in types:
            if t == "null":
                nullable = True
                continue
            parts.append(self._one(t, node, indent))
        if nullable:
            parts.append("null")
        return " | ".join(parts) if parts else "null"

    def _one(self, t, node, indent):
        if t == "string":
            if node.get("enum"):
                return " | ".join(ts_string(e) for e in node["enum"])
            return "string"
        if t in ("integer", "number"):
            return "number"
        if t == "boolean":
            return "boolean"
        if t == "array":
            items = node.get("items", True)
            return "Array<%s>" % self.expr(items, indent)
        if t == "object":
            props = node.get("properties") or {}
            addl = node.get("additionalProperties", True)
            if not props:
                return "Record<string, unknown>"
            required = set(node.get("required") or [])
            inner = indent + "  "
            lines = ["{"]
            for pname, pnode in props.items():
                desc = pnode.get("description") if isinstance(pnode, dict) else None
                for c in comment_lines(desc, 72):
                    lines.append("%s/** %s */" % (inner, c.replace("*/", "* /")))
                key = pname if re.match(r"^[A-Za-z_$][A-Za-z0-9_$]*$", pname) else ts_string(pname)
                lines.append("%s%s%s: %s;" % (inner, key, "" if pname in required else "?",
                                              self.expr(pnode, inner)))
            if addl is not False:
                lines.append("%s[key: string]: unknown;" % inner)
            lines.append(indent + "}")
            return "\n".join(lines)
        raise modelmod.SpecError("unknown type %r" % t)


class PyTypes:
    """JSON Schema -> Python annotations. Objects with properties become
    TypedDict classes (inline ones named after their path); everything else
    is an annotation expression. The template writes each member's type as a
    string inside Required[...]/NotRequired[...] (TypedDict reads those
    qualifiers when the class is made, so they cannot be strings themselves)
    and each alias as a string TypeAlias: order and recursion do not matter."""

    def __init__(self, components, names):
        self.components = components
        self.names = names
        self.classes = []       # {name, description, fields: [{key, anno, required, description}]}
        self.aliases = []       # {name, anno, description}
        self.used = set(names.values()) | PY_GLOBAL_TYPES

    def _fresh(self, hint):
        name, i = hint, 2
        while name in self.used:
            name = "%s%d" % (hint, i)
            i += 1
        self.used.add(name)
        return name

    def component(self, name, node):
        name = self.names[name]
        if isinstance(node, dict) and self._is_struct(node):
            self._typed_dict(name, node)
        else:
            self.aliases.append({"name": name, "anno": self.anno(node, name),
                                 "description": node.get("description", "") if isinstance(node, dict) else ""})

    @staticmethod
    def _is_struct(node):
        types = _types_of(node)
        return bool(node.get("properties")) and (types is None or types == ["object"]) \
            and not any(k in node for k in ("oneOf", "anyOf", "allOf", "$ref"))

    def _typed_dict(self, name, node):
        entry = {"name": name, "description": node.get("description", ""), "fields": []}
        self.classes.append(entry)   # before the fields: they may refer back to it
        required = set(node.get("required") or [])
        for pname, pnode in (node.get("properties") or {}).items():
            entry["fields"].append({
                "key": pname, "required": pname in required,
                "anno": self.anno(pnode, name + pascal_part(pname)),
                "description": pnode.get("description", "") if isinstance(pnode, dict) else ""})
        entry["functional"] = any(not f["key"].isidentifier() or keyword.iskeyword(f["key"])
                                  for f in entry["fields"])
        return name

    def anno(self, node, hint):
        if node is True or node is None or node == {}:
            return "Any"
        if not isinstance(node, dict):
            return "Any"
        if "$ref" in node:
            return self.names[_ref_name(node["$ref"])]
        nullable = bool(node.get("nullable"))
        if "const" in node:
            return self._opt("Literal[%r]" % (node["const"],), nullable)
        for key in ("oneOf", "anyOf"):
            if key in node:
                parts = []
                for i, branch in enumerate(node[key]):
                    p = self.anno(branch, "%s%d" % (hint, i + 1))
                    if p not in parts:
                        parts.append(p)
                if "Any" in parts:
                    return "Any"
                return self._opt(parts[0] if len(parts) == 1 else "Union[%s]" % ", ".join(parts), nullable)
        if "allOf" in node:
            # A TypedDict cannot be an intersection; the value is still a dict.
            return self._opt("Dict[str, Any]", nullable)
        if self._is_struct(node):
            return self._opt(self._typed_dict(self._fresh(hint), node), nullable)
        types = _types_of(node)
        if types is None:
            return "Any"
        parts = []
        for t in types:
            if t == "null":
                nullable = True
            elif t == "string":
                parts.append("Literal[%s]" % ", ".join(repr(e) for e in node["enum"])
                             if node.get("enum") else "str")
            elif t == "integer":
                parts.append("int")
            elif t == "number":
                parts.append("float")
            elif t == "boolean":
                parts.append("bool")
            elif t == "array":
                parts.append("List[%s]" % self.anno(node.get("items", True), hint + "Item"))
            elif t == "object":
                parts.append("Dict[str, Any]")
            else:
                raise modelmod.SpecError("%s: unknown type %r" % (hint, t))
        if not parts:
            return "None"
        return self._opt(parts[0] if len(parts) == 1 else "Union[%s]" % ", ".join(parts), nullable)

    @staticmethod
    def _opt(anno, nullable):
        return "Optional[%s]" % anno if nullable else anno


class ClientMethod:
    pass


def _resolve(components, node):
    seen = 0
    while isinstance(node, dict) and "$ref" in node:
        node = components[_ref_name(node["$ref"])]
        seen += 1
        if seen > 32:
            raise modelmod.SpecError("$ref chain too long")
    return node


def build(spec, m):
    """The template model: methods with their Python and TypeScript names and
    types, the named types, the error codes, the terminal run statuses."""
    components = (spec.get("components") or {}).get("schemas") or {}
    import builtins
    py_reserved = PY_GLOBAL_TYPES | set(dir(builtins)) | {e["code"] + "Error" for e in m.errors}
    py_names = {n: n + "Schema" if n in py_reserved else n for n in components}
    ts_names = {n: n + "Schema" if n in TS_GLOBAL_TYPES else n for n in components}
    for names in (py_names, ts_names):
        if len(set(names.values())) != len(names):
            raise modelmod.SpecError("component names collide once renamed: %s" % sorted(names.values()))
    py = PyTypes(components, py_names)
    ts = TsTypes(components, ts_names)
    for name, node in components.items():
        py.component(name, node)
    ts_components = []
    for name, node in components.items():
        desc = node.get("description", "") if isinstance(node, dict) else ""
        ts_components.append({"name": ts_names[name], "expr": ts.expr(node), "doc": comment_lines(desc)})

    ops = {}
    for path, item in (spec.get("paths") or {}).items():
        for verb, op in (item or {}).items():
            if isinstance(op, dict) and "x-smithers-method" in op:
                ops[op["x-smithers-method"]] = op

    methods, py_seen, ts_seen = [], {}, {}
    for cm in m.methods:
        op = ops[cm.name]
        body = op["requestBody"]["content"]["application/json"]["schema"]
        payload = m._payload_schema(op, cm.name)
        c = ClientMethod()
        c.name, c.scope, c.transport, c.errors = cm.name, cm.scope, cm.transport, list(cm.errors)
        c.summary = cm.title
        c.doc = comment_lines(cm.description or cm.title)
        c.py_doc = py_doc_lines(cm.description or cm.title, 76)
        c.py, c.ts = py_name(cm.name), ts_name(cm.name)
        for seen, key, reserved in ((py_seen, c.py, PY_RESERVED), (ts_seen, c.ts, TS_RESERVED)):
            if key in reserved:
                raise modelmod.SpecError("method %s: client member name %s is reserved" % (cm.name, key))
            if key in seen:
                raise modelmod.SpecError("methods %s and %s both map to the client name %s"
                                         % (seen[key], cm.name, key))
            seen[key] = cm.name
        P = modelmod.pascal(cm.name)
        c.py_req = py.anno(body, P + "Request")
        c.py_res = py.anno(payload, P + "Response")
        c.ts_req = ts.expr(body)
        c.ts_res = ts.expr(payload)
        resolved = _resolve(components, body)
        c.params_optional = not (isinstance(resolved, dict) and resolved.get("required"))
        c.stream = cm.name in STREAM_METHODS
        c.ws_only = cm.transport == "websocket"
        methods.append(c)

    terminal = []
    for st in m.statuses:
        if st["cname"] == "anvil_run_status":
            terminal = [e["name"] for e in st["entries"] if e["terminal"]]
    return {
        "api_version": m.api_version,
        "methods": methods,
        "streams": {c.name for c in methods if c.stream},
        "py_classes": py.classes,
        "py_aliases": py.aliases,
        "ts_components": ts_components,
        "components": set(components),
        "errors": m.errors,
        "terminal": terminal,
        "scopes": m.scopes,
    }


PY_EAGER_NAMES = {"str", "int", "float", "bool", "None", "Any", "Dict", "List", "Optional", "Union",
                  "Literal"}


def py_member_type(anno):
    """A TypedDict member's type as written inside Required[...]: as is when
    it names only builtins and typing, else quoted (a forward reference)."""
    bare = re.sub(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"", "", anno)
    if set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", bare)) <= PY_EAGER_NAMES:
        return anno
    return repr(anno)


def render(spec, m, env, spec_note):
    """{relative path: text} of every client file."""
    ctx = build(spec, m)
    env.filters["pycomment"] = py_doc_lines
    env.filters["tsstr"] = ts_string
    env.filters["pyrepr"] = repr
    env.filters["pymember"] = py_member_type
    out = {}
    for rel, tname in OUTPUTS:
        mark = "#" if rel.endswith(".py") else "//"
        banner = ("%s %s — GENERATED by codegen/anvil_codegen.py (clients_gen.py) from %s.\n"
                  "%s Do not edit: change the spec and run `make regen`.\n"
                  % (mark, os.path.basename(rel), spec_note, mark))
        out[rel] = banner + env.get_template(tname).render(c=ctx, spec_note=spec_note)
    return out


def stale(out_dir, written):
    """Files under the client folders that render() no longer writes."""
    extra = []
    for d in CLIENT_DIRS:
        full = os.path.join(out_dir, d)
        if not os.path.isdir(full):
            continue
        for name in sorted(os.listdir(full)):
            rel = d + "/" + name
            if rel not in written and os.path.isfile(os.path.join(full, name)):
                extra.append(rel)
    return extra
