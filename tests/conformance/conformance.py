#!/usr/bin/env python3
"""Black-box conformance checks of a Smithers Gateway v1 server, derived from
openapi.yaml (docs/conformance.md).

    /usr/bin/python3 tests/conformance/conformance.py --url http://127.0.0.1:7331 \\
        --token OPERATOR_TOKEN [--weak-token T --weak-scopes run:read] \\
        [--spec openapi.yaml] [--ws-url ws://127.0.0.1:7331/] [--report report.md]

What it checks, all from the document (nothing here knows Anvil):

1. spec      every request, response and error example validates against its
             schema, and every error example names a code its operation
             declares, with that code's status;
2. examples  every method's request example, sent over HTTP (and over the
             WebSocket for methods that speak it), is answered either with a
             frame valid against the 200 schema or with an error frame whose
             code the method declares, with the status the error map gives;
3. errors    the declared codes a client can provoke from outside are
             provoked: Unauthorized (no token), InvalidRequest (a body of the
             wrong shape), RunNotFound (a well-formed unknown run id),
             Forbidden (the scope matrix), MethodNotFound and PayloadTooLarge
             (once per server); codes only the server's own trouble produces
             (Internal, StorageUnavailable, ...) are listed as not provoked;
4. scopes    with --weak-token (a token holding only --weak-scopes), every
             method needing another scope is refused with Forbidden and its
             requiredScope, and no method whose scope it holds is;
5. frames    the WebSocket hello, answers and events are well-formed frames.

Run it against a test gateway: the examples launch runs and create crons.
Exit status 0 when every check passed, 1 when one failed, 2 on bad usage.
"""
import argparse
import asyncio
import datetime
import http.client
import json
import os
import re
import sys
import urllib.parse
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from spec import Spec  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_SPEC = os.path.join(HERE, "..", "..", "openapi.yaml")
MISSING_RUN = "run_conformance_missing_0000"


class Report:
    def __init__(self):
        self.rows = []            # (section, method, check, outcome, detail)

    def add(self, section, method, check, ok, detail=""):
        self.rows.append((section, method, check, "pass" if ok else "FAIL", detail))
        return ok

    def skip(self, section, method, check, detail):
        self.rows.append((section, method, check, "not provoked", detail))

    def failures(self):
        return [r for r in self.rows if r[3] == "FAIL"]

    def counts(self):
        c = {"pass": 0, "FAIL": 0, "not provoked": 0}
        for r in self.rows:
            c[r[3]] += 1
        return c

    def markdown(self, args, spec):
        c = self.counts()
        out = ["# Conformance report", "",
               "- server: %s (WebSocket %s)" % (args.url, args.ws_url),
               "- contract: %s, %d methods" % (os.path.relpath(args.spec), len(spec.methods)),
               "- when: %s" % datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
               "- result: **%d passed, %d failed**, %d declared codes not provokable from outside"
               % (c["pass"], c["FAIL"], c["not provoked"]),
               "",
               "Against another v1 gateway: `/usr/bin/python3 tests/conformance/conformance.py "
               "--url URL --token TOKEN [--weak-token T --weak-scopes run:read] [--ws-url WS_URL]` "
               "(a token with every scope; the weak token enables the scope matrix). "
               "Use a test gateway: the examples launch runs and create crons.", ""]
        fails = self.failures()
        if fails:
            out += ["## Failures", "", "| section | method | check | detail |", "| --- | --- | --- | --- |"]
            out += ["| %s | %s | %s | %s |" % (r[0], r[1], r[2], r[4].replace("|", "\\|")) for r in fails]
            out.append("")
        out += ["## Every check", "", "| section | method | check | outcome | detail |",
                "| --- | --- | --- | --- | --- |"]
        out += ["| %s | %s | %s | %s | %s |" % (r[0], r[1], r[2], r[3], r[4].replace("|", "\\|"))
                for r in self.rows]
        return "\n".join(out) + "\n"


# ---- transports ---------------------------------------------------------------

class Http:
    def __init__(self, url, timeout):
        u = urllib.parse.urlsplit(url)
        if u.scheme not in ("http", "https") or not u.hostname:
            raise ValueError("--url must be http(s)://host[:port]")
        self.https = u.scheme == "https"
        self.host, self.port = u.hostname, u.port or (443 if self.https else 80)
        self.prefix = u.path.rstrip("/")
        self.timeout = timeout

    def post(self, path, body, token=None):
        """(status, lower-cased headers, parsed JSON or None, raw text)."""
        cls = http.client.HTTPSConnection if self.https else http.client.HTTPConnection
        conn = cls(self.host, self.port, timeout=self.timeout)
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = "Bearer " + token
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        try:
            conn.request("POST", self.prefix + path, body=data, headers=headers)
            r = conn.getresponse()
            raw = r.read().decode("utf-8", "replace")
            hdrs = {k.lower(): v for k, v in r.getheaders()}
            try:
                doc = json.loads(raw)
            except ValueError:
                doc = None
            return r.status, hdrs, doc, raw
        finally:
            conn.close()


def error_of(doc):
    return doc.get("error") if isinstance(doc, dict) and isinstance(doc.get("error"), dict) else {}


# ---- checks -------------------------------------------------------------------

def check_spec(spec, report):
    for m in spec.methods:
        if m.request_example is not None:
            p = spec.problems(m.request_schema, m.request_example)
            report.add("spec", m.name, "request example", not p, "; ".join(p[:3]))
        if m.ok_example is not None:
            p = spec.problems(m.ok_schema, m.ok_example)
            report.add("spec", m.name, "200 example", not p, "; ".join(p[:3]))
        for status, code, value, schema in m.error_examples():
            p = spec.problems(schema, value)
            if code not in m.errors:
                p.append("%s is not in x-smithers-errors" % code)
            if str(spec.status_of(code)) != status:
                p.append("%s is %s in the error map, listed under %s" % (code, spec.status_of(code), status))
            report.add("spec", m.name, "%s example (%s)" % (code, status), not p, "; ".join(p[:3]))


def judge_answer(spec, m, status, doc, expect_code=None, http_status=True):
    """Problems with one answer to m: a valid success, or a declared error with
    its status. expect_code: the error the caller provoked."""
    if doc is None:
        return ["not a JSON frame (status %s)" % status]
    if doc.get("ok") is True:
        if expect_code:
            return ["answered ok, expected %s" % expect_code]
        if http_status and status != 200:
            return ["ok frame with status %s" % status]
        return spec.problems(m.ok_schema, doc)
    probs = spec.problems(spec.schema("ErrorFrame"), doc)
    code = error_of(doc).get("code")
    if code not in m.errors:
        probs.append("answered %s, which %s does not declare" % (code, m.name))
    if expect_code and code != expect_code:
        probs.append("answered %s, expected %s" % (code, expect_code))
    if http_status and code in spec.error_map and status != spec.status_of(code):
        probs.append("%s with status %s, the error map says %s" % (code, status, spec.status_of(code)))
    return probs


def outcome_text(status, doc):
    if not isinstance(doc, dict):
        return "status %s" % status
    return "ok" if doc.get("ok") is True else "%s %s" % (error_of(doc).get("code"), status)


def params_of(m):
    return m.request_example if m.request_example is not None else {}


def check_http_examples(spec, http_, token, report):
    """Every example as written; returns the ids the examples created (the
    launched run's runId, the created cron's cronId)."""
    live = {}
    for m in spec.methods:
        if not m.over_http:
            continue
        status, hdrs, doc, raw = http_.post(m.path, params_of(m), token)
        probs = judge_answer(spec, m, status, doc)
        if doc is not None and doc.get("ok") is True and hdrs.get("x-smithers-api-version") != "v1":
            probs.append("no X-Smithers-API-Version: v1 header")
        report.add("examples", m.name, "HTTP example -> %s" % outcome_text(status, doc), not probs,
                   "; ".join(probs[:3]))
        payload = doc.get("payload") if isinstance(doc, dict) and doc.get("ok") is True else None
        if m.name == "cronCreate" and isinstance(payload, dict) and isinstance(payload.get("cronId"), str):
            live["cronId"] = payload["cronId"]
    return live


def launch_live_run(spec, http_, token, report):
    """launchRun's example under a run id of its own (the example's fixed
    id exists after the first kit run); the new run's id, or None."""
    m = next((m for m in spec.methods if m.name == "launchRun" and m.over_http), None)
    if m is None or not isinstance(params_of(m), dict):
        return None
    fresh = "conformance-%s" % uuid.uuid4().hex[:16]

    def renamed(v):
        if isinstance(v, dict):
            return {k: (fresh if k == "runId" else renamed(x)) for k, x in v.items()
                    if k != "idempotencyKey"}
        return v
    params = renamed(params_of(m))
    status, _, doc, _ = http_.post(m.path, params, token)
    probs = judge_answer(spec, m, status, doc)
    payload = doc.get("payload") if isinstance(doc, dict) and doc.get("ok") is True else None
    run_id = payload.get("runId") if isinstance(payload, dict) else None
    if not probs and not isinstance(run_id, str):
        probs = ["no run launched: %s" % outcome_text(status, doc)]
    report.add("examples", m.name, "HTTP example under a fresh runId -> %s" % outcome_text(status, doc),
               not probs, "; ".join(probs[:3]))
    return run_id if not probs else None


def check_live_examples(spec, http_, token, live, report):
    """The examples again, on the run and cron the examples created, so the
    success answers are validated too: the reading methods, then the cron's
    removal (which cleans up after cronCreate's example)."""
    if not live:
        report.add("examples", "launchRun", "an example created a run to read", False,
                   "neither launchRun's nor cronCreate's example succeeded")
        return
    readers = [m for m in spec.methods if m.over_http and (m.scope or "").endswith(":read")]
    cleanup = [m for m in spec.methods if m.over_http and m.name == "cronDelete"]
    for m in readers + cleanup:
        params = params_of(m)
        if not isinstance(params, dict) or not any(k in params for k in live):
            continue
        params = dict(params, **{k: v for k, v in live.items() if k in params})
        status, _, doc, _ = http_.post(m.path, params, token)
        probs = judge_answer(spec, m, status, doc)
        report.add("examples", m.name, "HTTP example on the live %s -> %s"
                   % ("/".join(k for k in live if k in params), outcome_text(status, doc)),
                   not probs, "; ".join(probs[:3]))


def wrong_shape(m):
    """A params value the request schema refuses, or None."""
    props, required = m.request_properties()
    if required:
        return {}
    for name, s in props.items():
        t = m.spec.resolve(s).get("type")
        if t == "string":
            return {name: {"not": "a string"}}
        if t in ("integer", "number", "boolean", "array"):
            return {name: "not-a-%s" % t}
    return None


def check_provocations(spec, http_, token, report):
    for m in spec.methods:
        if not m.over_http:
            continue
        provoked = set()
        if "Unauthorized" in m.errors:
            status, _, doc, _ = http_.post(m.path, params_of(m), None)
            p = judge_answer(spec, m, status, doc, "Unauthorized")
            report.add("errors", m.name, "Unauthorized (no token)", not p, "; ".join(p[:3]))
            provoked.add("Unauthorized")
        if "InvalidRequest" in m.errors:
            status, _, doc, _ = http_.post(m.path, [], token)
            p = judge_answer(spec, m, status, doc, "InvalidRequest")
            report.add("errors", m.name, "InvalidRequest (an array for params)", not p, "; ".join(p[:3]))
            bad = wrong_shape(m)
            if bad is not None:
                status, _, doc, _ = http_.post(m.path, bad, token)
                p = judge_answer(spec, m, status, doc, "InvalidRequest")
                if not p and not error_of(doc).get("path"):
                    p = ["InvalidRequest without a JSON path"]
                report.add("errors", m.name, "InvalidRequest (%s)" % json.dumps(bad), not p, "; ".join(p[:3]))
            provoked.add("InvalidRequest")
        props, _ = m.request_properties()
        if "RunNotFound" in m.errors and "runId" in props:
            pattern = m.spec.resolve(props["runId"]).get("pattern")
            if not pattern or re.search(pattern, MISSING_RUN):
                params = dict(params_of(m)) if isinstance(params_of(m), dict) else {}
                params["runId"] = MISSING_RUN
                status, _, doc, _ = http_.post(m.path, params, token)
                p = judge_answer(spec, m, status, doc, "RunNotFound")
                report.add("errors", m.name, "RunNotFound (runId %s)" % MISSING_RUN, not p, "; ".join(p[:3]))
                provoked.add("RunNotFound")
        for code in m.errors:
            if code not in provoked and code != "Forbidden":
                report.skip("errors", m.name, code, "needs server state or trouble the kit cannot make from outside")


def check_server_wide(spec, http_, token, report):
    """Codes any path answers: an unknown method, an oversized body."""
    if "MethodNotFound" in spec.error_map:
        status, _, doc, _ = http_.post("/v1/rpc/conformanceNoSuchMethod", {}, token)
        p = spec.problems(spec.schema("ErrorFrame"), doc) if doc else ["not a JSON frame"]
        code = error_of(doc).get("code")
        if code != "MethodNotFound" or status != spec.status_of("MethodNotFound"):
            p.append("answered %s %s" % (code, status))
        report.add("errors", "(any)", "MethodNotFound (an unknown method)", not p, "; ".join(p[:3]))
    limit = spec.bounds.get("maxBodyBytes")
    if "PayloadTooLarge" in spec.error_map and limit:
        health = next((m for m in spec.methods if m.name == "health"), spec.methods[0])
        body = b'{"pad":"' + b"x" * int(limit) + b'"}'
        try:
            status, _, doc, _ = http_.post(health.path, body, token)
            code = error_of(doc).get("code")
            p = [] if (code, status) == ("PayloadTooLarge", spec.status_of("PayloadTooLarge")) else \
                ["answered %s %s" % (code, status)]
        except (ConnectionError, OSError) as e:
            p = ["connection failed instead of a 413: %s" % e]
        report.add("errors", "(any)", "PayloadTooLarge (a body over maxBodyBytes %s)" % limit, not p,
                   "; ".join(p))


def check_scopes(spec, http_, weak_token, weak_scopes, report):
    for m in spec.methods:
        if not m.over_http or not m.scope:
            continue
        status, _, doc, _ = http_.post(m.path, params_of(m), weak_token)
        code = error_of(doc).get("code") if isinstance(doc, dict) else None
        if m.scope in weak_scopes:
            ok = isinstance(doc, dict) and code != "Forbidden"
            report.add("scopes", m.name, "allowed with %s" % m.scope, ok,
                       "" if ok else "refused: %s" % outcome_text(status, doc))
            continue
        p = judge_answer(spec, m, status, doc, "Forbidden")
        if not p and error_of(doc).get("requiredScope") != m.scope:
            p = ["requiredScope %r, expected %r" % (error_of(doc).get("requiredScope"), m.scope)]
        report.add("scopes", m.name, "refused without %s" % m.scope, not p, "; ".join(p[:3]))


async def check_websocket(spec, ws_url, token, timeout, report):
    try:
        import websockets
    except ImportError:
        report.add("frames", "(websocket)", "python3-websockets present", False, "install python3-websockets")
        return
    event_schema = spec.schema("EventFrame")

    async def exchange(ws, frame, events):
        await ws.send(json.dumps(frame))
        while True:
            msg = json.loads(await asyncio.wait_for(ws.recv(), timeout))
            if msg.get("type") == "res" and msg.get("id") == frame["id"]:
                return msg
            events.append(msg)

    hello_params = {"minProtocol": 1, "maxProtocol": 1, "client": {"name": "anvil-conformance"}}
    async with websockets.connect(ws_url, ping_interval=None, close_timeout=2,
                                  compression=None, open_timeout=timeout) as ws:
        res = await exchange(ws, {"type": "req", "id": "c0", "method": "connect",
                                  "params": hello_params}, [])
        p = [] if res.get("ok") is False else ["connect without a token was accepted"]
        if not p and error_of(res).get("code") != "Unauthorized":
            p = ["answered %s, expected Unauthorized" % error_of(res).get("code")]
        report.add("frames", "connect", "refused without a token", not p, "; ".join(p))
    async with websockets.connect(ws_url, ping_interval=None, close_timeout=2,
                                  compression=None, open_timeout=timeout) as ws:
        events = []
        res = await exchange(ws, {"type": "req", "id": "c1", "method": "connect",
                                  "params": dict(hello_params, auth={"token": token})}, events)
        p = spec.problems(spec.schema("ResponseFrame"), res) if spec.schema("ResponseFrame") else []
        if res.get("ok") is not True:
            p.append("connect refused: %s" % error_of(res).get("code"))
        hello = spec.schema("HelloOk") or spec.schema("Hello")
        if hello is not None and res.get("ok") is True:
            p += spec.problems(hello, res.get("payload"))
        report.add("frames", "connect", "hello frame", not p, "; ".join(p[:3]))
        for i, m in enumerate(spec.methods):
            if not m.over_websocket:
                continue
            frame = {"type": "req", "id": "m%d" % i, "method": m.name, "params": params_of(m)}
            try:
                res = await exchange(ws, frame, events)
            except asyncio.TimeoutError:
                report.add("examples", m.name, "WebSocket example", False, "no answer in %ss" % timeout)
                continue
            p = judge_answer(spec, m, None, res, http_status=False)
            if res.get("id") != frame["id"]:
                p.append("answer id %r" % res.get("id"))
            report.add("examples", m.name, "WebSocket example -> %s" % outcome_text("", res).strip(),
                       not p, "; ".join(p[:3]))
        bad = [e for e in events if e.get("type") != "event" or
               (event_schema is not None and spec.problems(event_schema, e))]
        report.add("frames", "(websocket)", "%d event frames well-formed" % len(events), not bad,
                   "; ".join(json.dumps(e)[:160] for e in bad[:2]))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", required=True, help="the gateway's base URL, e.g. http://127.0.0.1:7331")
    ap.add_argument("--token", required=True, help="a token with every scope")
    ap.add_argument("--weak-token", help="a token holding only --weak-scopes (enables the scope matrix)")
    ap.add_argument("--weak-scopes", default="", help="comma-separated scopes the weak token holds")
    ap.add_argument("--spec", default=DEFAULT_SPEC, help="the contract (default: this repository's)")
    ap.add_argument("--ws-url", help="the WebSocket URL (default: the base URL's host, path /)")
    ap.add_argument("--report", help="write the markdown report here (default: stdout)")
    ap.add_argument("--timeout", type=float, default=10.0, help="seconds per request")
    args = ap.parse_args(argv)
    try:
        http_ = Http(args.url, args.timeout)
    except ValueError as e:
        ap.error(str(e))
    if not args.ws_url:
        u = urllib.parse.urlsplit(args.url)
        args.ws_url = "%s://%s/" % ("wss" if u.scheme == "https" else "ws", u.netloc)
    spec = Spec(args.spec)
    report = Report()
    check_spec(spec, report)
    live = check_http_examples(spec, http_, args.token, report)
    run_id = launch_live_run(spec, http_, args.token, report)
    if run_id:
        live["runId"] = run_id
    check_live_examples(spec, http_, args.token, live, report)
    check_provocations(spec, http_, args.token, report)
    check_server_wide(spec, http_, args.token, report)
    if args.weak_token:
        weak = {s.strip() for s in args.weak_scopes.split(",") if s.strip()}
        check_scopes(spec, http_, args.weak_token, weak, report)
    try:
        asyncio.run(check_websocket(spec, args.ws_url, args.token, args.timeout, report))
    except (OSError, asyncio.TimeoutError) as e:
        report.add("frames", "(websocket)", "connect to %s" % args.ws_url, False, str(e))
    text = report.markdown(args, spec)
    if args.report:
        with open(args.report, "w", encoding="utf-8") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    c = report.counts()
    print("conformance: %d passed, %d failed, %d not provoked" % (c["pass"], c["FAIL"], c["not provoked"]),
          file=sys.stderr)
    return 1 if c["FAIL"] else 0


if __name__ == "__main__":
    sys.exit(main())
