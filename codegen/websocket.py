"""codegen/websocket.py — the WebSocket part of the contract: the model the
websocket templates render (generated/anvil_websocket.h/.c) and the AsyncAPI
3.0 document of the socket (generated/asyncapi.yaml).

Reads the top-level `x-anvil-websocket` extension of openapi.yaml:

  x-anvil-websocket:
    path: /                      # the socket's HTTP path
    frames: {req: S, res: S, event: S}
    connect: {method: connect, params: S, result: S}
    events: {name: {payload: S, summary: text}, ...}

(S: a schema name under components/schemas), the per-operation
`x-anvil-subscribes-run: payload.<member> | params.<member>` (the call
subscribes its connection to the run that member names) and the
per-operation `x-anvil-request-frame: true` (the operation whose body is the
HTTP request frame, POST /rpc). The schemas it names are resolved through
model.Model, so their C structs and descriptors land in anvil_types.h and
anvil_schemas.c with everyone else's. Anything it cannot honour is a
SpecError naming the place.
"""

import copy
import re

from model import METHOD_NAME, SpecError, snake

# Event names: lower-case words joined by dots, words may hold underscores
# ("run.gap_resync", "tick").
EVENT_NAME = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$")
SUBSCRIBES = re.compile(r"^(payload|params)\.([A-Za-z_][A-Za-z0-9_]*)$")


class Event:
    def __init__(self, name, schema_name, desc, summary):
        self.name = name
        self.schema_name = schema_name
        self.desc = desc
        self.summary = summary
        self.enum = "ANVIL_WS_EVENT_" + snake(name.replace(".", "_")).upper()


class WsModel:
    """The WebSocket protocol of a spec; None-like (present False) when the
    spec has no x-anvil-websocket."""

    def __init__(self, spec, model):
        self.spec = spec
        self.m = model
        ws = spec.get("x-anvil-websocket")
        self.present = ws is not None
        self.subscribes = {}      # method name -> (where, member)
        self.http_frame = None    # descriptor of POST /rpc's body, or None
        self._collect_operations()
        if not self.present:
            if self.subscribes:
                raise SpecError("x-anvil-subscribes-run is used but the spec has no x-anvil-websocket")
            return
        if not isinstance(ws, dict):
            raise SpecError("x-anvil-websocket must be a mapping")
        self.path = ws.get("path", "/")
        if not isinstance(self.path, str) or not self.path.startswith("/"):
            raise SpecError("x-anvil-websocket.path must be an absolute path")
        self.description = ws.get("description", "")
        frames = ws.get("frames") or {}
        for k in ("req", "res", "event"):
            if k not in frames:
                raise SpecError("x-anvil-websocket.frames.%s is missing" % k)
        self.frame_names = {k: frames[k] for k in ("req", "res", "event")}
        self.req = self._object("x-anvil-websocket.frames.req", frames["req"])
        self.res = self._object("x-anvil-websocket.frames.res", frames["res"])
        self.event_frame = self._object("x-anvil-websocket.frames.event", frames["event"])
        conn = ws.get("connect") or {}
        self.connect_method = conn.get("method", "connect")
        if not isinstance(self.connect_method, str) or not METHOD_NAME.match(self.connect_method):
            raise SpecError("x-anvil-websocket.connect.method %r is not a method name" % self.connect_method)
        if any(mm.name == self.connect_method for mm in model.methods):
            raise SpecError("x-anvil-websocket.connect.method %s is also an RPC method" % self.connect_method)
        for k in ("params", "result"):
            if k not in conn:
                raise SpecError("x-anvil-websocket.connect.%s is missing" % k)
        self.connect_params_name = conn["params"]
        self.connect_result_name = conn["result"]
        self.connect_params = self._object("x-anvil-websocket.connect.params", conn["params"])
        self.connect_result = self._object("x-anvil-websocket.connect.result", conn["result"])
        events = ws.get("events") or {}
        if not isinstance(events, dict) or not events:
            raise SpecError("x-anvil-websocket.events must name at least one event")
        self.events = []
        for name, info in events.items():
            if not isinstance(name, str) or not EVENT_NAME.match(name):
                raise SpecError("x-anvil-websocket.events: %r is not an event name (%s)"
                                % (name, EVENT_NAME.pattern))
            if not isinstance(info, dict) or "payload" not in info:
                raise SpecError("x-anvil-websocket.events.%s needs a payload schema" % name)
            desc = self._object("x-anvil-websocket.events.%s.payload" % name, info["payload"])
            self.events.append(Event(name, info["payload"], desc, info.get("summary", "")))
        enums = {}
        for e in self.events:
            if e.enum in enums:
                raise SpecError("events %s and %s both map to the C name %s" % (enums[e.enum], e.name, e.enum))
            enums[e.enum] = e.name
        # bsearch in the runtime relies on strcmp order, i.e. byte order.
        self.events_sorted = sorted(self.events, key=lambda e: e.name.encode("utf-8"))
        self.methods = [dict(method=mm, sub=self.subscribes.get(mm.name)) for mm in model.methods]

    def _object(self, where, name):
        if not isinstance(name, str) or name not in self.m.components:
            raise SpecError("%s: %r is not a schema under components/schemas" % (where, name))
        node = self.m.components[name]
        if not isinstance(node, dict) or node.get("type") != "object":
            raise SpecError("%s: schema %s must be an object schema" % (where, name))
        d = self.m.resolve_ref("#/components/schemas/" + name, top_level=True)
        if not d.cname:
            raise SpecError("%s: schema %s did not produce a C type" % (where, name))
        return d

    def _collect_operations(self):
        by_name = {mm.name: mm for mm in self.m.methods}
        for path, item in (self.spec.get("paths") or {}).items():
            for verb, op in (item or {}).items():
                if not isinstance(op, dict):
                    continue
                if op.get("x-anvil-request-frame"):
                    body = (((op.get("requestBody") or {}).get("content") or {})
                            .get("application/json") or {}).get("schema") or {}
                    if "$ref" not in body:
                        raise SpecError("%s: x-anvil-request-frame needs a $ref request body" % path)
                    if self.http_frame is not None:
                        raise SpecError("%s: a second operation carries x-anvil-request-frame" % path)
                    self.http_frame = self.m.resolve_ref(body["$ref"], top_level=True)
                if "x-anvil-subscribes-run" not in op:
                    continue
                name = op.get("x-smithers-method")
                where = op["x-anvil-subscribes-run"]
                if name not in by_name:
                    raise SpecError("%s: x-anvil-subscribes-run on an operation that is no RPC method" % path)
                mm = by_name[name]
                if mm.transport == "http":
                    raise SpecError("%s: x-anvil-subscribes-run on an HTTP-only method" % name)
                sm = SUBSCRIBES.match(where) if isinstance(where, str) else None
                if not sm:
                    raise SpecError("%s: x-anvil-subscribes-run %r must be payload.<member> or params.<member>"
                                    % (name, where))
                desc = mm.response if sm.group(1) == "payload" else mm.request
                field = next((f for f in desc.fields if f.json_name == sm.group(2)), None)
                if field is None or field.desc.kind != "STRING":
                    raise SpecError("%s: x-anvil-subscribes-run names %s, which is not a string member of %s"
                                    % (name, where, desc.name))
                self.subscribes[name] = (sm.group(1), sm.group(2))

    # ------------------------------------------------------------- asyncapi
    def asyncapi(self, spec_note):
        """The AsyncAPI 3.0 document of the socket, as a dict."""
        spec = self.spec
        info = spec.get("info") or {}
        comps = self.m.components
        names = set()

        def ref(name):
            names.add(name)
            return {"$ref": "#/components/schemas/" + name}

        def frame_with(base, extra_props, required=None):
            sub = {"type": "object", "properties": extra_props}
            if required:
                sub["required"] = required
            return {"allOf": [ref(base), sub]}

        def body_ref(node):
            if isinstance(node, dict) and "$ref" in node:
                return ref(node["$ref"].rsplit("/", 1)[1])
            return node

        messages, send, recv_events = {}, {}, []
        channel_msgs = {}
        operations = {}
        req_name = self.frame_names["req"]
        res_name = self.frame_names["res"]
        ev_name = self.frame_names["event"]

        def add_message(key, title, summary, payload):
            messages[key] = {"name": key, "title": title, "summary": summary or title,
                             "contentType": "application/json", "payload": payload}
            channel_msgs[key] = {"$ref": "#/components/messages/" + key}
            return {"$ref": "#/channels/socket/messages/" + key}

        # connect: request and its hello.
        c = self.connect_method
        creq = add_message(c + ".request", "connect request",
                           "The first request of every connection.",
                           frame_with(req_name, {"method": {"const": c},
                                                 "params": ref(self.connect_params_name)},
                                      ["params"]))
        cres = add_message(c + ".response", "connect response (hello)",
                           "hello, or an error frame.",
                           frame_with(res_name, {"payload": ref(self.connect_result_name)}))
        operations["connect"] = {
            "action": "send", "channel": {"$ref": "#/channels/socket"},
            "summary": "Authenticate the connection and negotiate the protocol.",
            "messages": [creq],
            "reply": {"channel": {"$ref": "#/channels/socket"}, "messages": [cres]}}

        # Every method the socket carries: a request and its response.
        for path, item in (spec.get("paths") or {}).items():
            for verb, op in (item or {}).items():
                if not isinstance(op, dict) or "x-smithers-method" not in op:
                    continue
                if op.get("x-smithers-transport") == "http":
                    continue
                name = op["x-smithers-method"]
                body = (((op.get("requestBody") or {}).get("content") or {})
                        .get("application/json") or {}).get("schema")
                payload = self.m._payload_schema(op, name)
                rq = add_message(name + ".request", name + " request", op.get("summary", name),
                                 frame_with(req_name, {"method": {"const": name}, "params": body_ref(body)}))
                rs = add_message(name + ".response", name + " response", op.get("summary", name),
                                 frame_with(res_name, {"payload": body_ref(payload)}))
                o = {"action": "send", "channel": {"$ref": "#/channels/socket"},
                     "summary": op.get("summary", name), "messages": [rq],
                     "reply": {"channel": {"$ref": "#/channels/socket"}, "messages": [rs]}}
                if name in self.subscribes:
                    o["x-anvil-subscribes-run"] = "%s.%s" % self.subscribes[name]
                operations[name.replace(".", "_")] = o

        for e in self.events:
            recv_events.append(add_message(
                e.name, e.name, e.summary,
                frame_with(ev_name, {"event": {"const": e.name}, "payload": ref(e.schema_name)})))
        operations["events"] = {
            "action": "receive", "channel": {"$ref": "#/channels/socket"},
            "summary": "Events the server pushes.", "messages": recv_events}

        # The schemas, and everything they refer to, in AsyncAPI's schema
        # dialect: OpenAPI's discriminator object becomes its property name,
        # `example` becomes `examples`.
        schemas, todo = {}, sorted(names)
        while todo:
            n = todo.pop()
            if n in schemas:
                continue
            if n not in comps:
                raise SpecError("asyncapi: $ref to unknown schema %r" % n)
            schemas[n] = _asyncapi_schema(copy.deepcopy(comps[n]), todo)
        servers = {}
        for i, s in enumerate(spec.get("servers") or []):
            url = s.get("url", "")
            mm = re.match(r"^(https?)://([^/]+)(/.*)?$", url)
            if mm:
                servers["server%d" % i if i else "default"] = {
                    "host": mm.group(2), "protocol": "wss" if mm.group(1) == "https" else "ws",
                    "pathname": self.path, "description": s.get("description", "")}
        doc = {
            "asyncapi": "3.0.0",
            "info": {"title": "%s WebSocket" % info.get("title", "API"),
                     "version": str(info.get("version", "0")),
                     "description": (self.description + "\n\nGenerated by codegen/anvil_codegen.py from "
                                     + spec_note + "; do not edit: change the spec and run `make regen`.")},
            "servers": servers,
            "defaultContentType": "application/json",
            "channels": {"socket": {"address": self.path, "title": "The gateway socket",
                                    "messages": channel_msgs}},
            "operations": operations,
            "components": {"messages": messages, "schemas": dict(sorted(schemas.items()))},
        }
        if not servers:
            del doc["servers"]
        return doc


def _asyncapi_schema(node, todo):
    if isinstance(node, list):
        return [_asyncapi_schema(v, todo) for v in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for k, v in node.items():
        if k == "properties" and isinstance(v, dict):
            out[k] = {pn: _asyncapi_schema(pv, todo) for pn, pv in v.items()}
        elif k == "$ref" and isinstance(v, str) and v.startswith("#/components/schemas/"):
            todo.append(v.rsplit("/", 1)[1])
            out[k] = v
        elif k == "discriminator" and isinstance(v, dict):
            out[k] = v.get("propertyName")
        elif k == "example":
            out["examples"] = [v]
        elif k.startswith("x-"):
            continue
        else:
            out[k] = _asyncapi_schema(v, todo)
    return out
