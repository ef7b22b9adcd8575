"""The workflows a chaos campaign runs, the server config that registers
them, and the launch input of one run.

Every task is a real shell command that sleeps a short time chosen by the
campaign (`input.t.<node>`, so a seed fixes it) and prints one JSON row
`{"node": ..., "nonce": ...}`. No task can fail by itself: a `failed` run
can only be the kills' doing. Between them the workflows cover a long
sequence, a parallel fan-out, an approval gate, a signal wait, and an
approval and a signal waiting at once in parallel branches.
"""
import yaml

TOKEN = "chaos-operator-token"
USER = "user:chaos"
SIGNAL_NAME = "go"

# `$$` would be a literal '$' in a run: template; a lone `$NAME` is shell.
# ${input...} values are shell-quoted by the engine.
_TASK_RUN = ("sleep ${input.t.%s}; "
             "printf '{\"node\":\"%%s\",\"nonce\":\"%%s\"}\\n' \"$ANVIL_NODE_ID\" ${input.nonce}")


def _task(node_id, retries):
    t = {"id": node_id, "run": _TASK_RUN % node_id}
    if retries:
        t["retries"] = retries
    return {"task": t}


def _approval(node_id):
    return {"approval": {"id": node_id, "title": "chaos gate %s" % node_id}}


def _signal(node_id):
    return {"signal": {"id": node_id, "name": SIGNAL_NAME, "correlationKey": "${input.key}"}}


def _seq(*children):
    return {"sequence": list(children)}


def _par(*children):
    return {"parallel": list(children)}


def workflows(task_retries=0):
    """{name: root node}. task_retries > 0 is a diagnostic mode only (see
    README.md): by default an interrupted task has no second chance."""
    T = lambda node_id: _task(node_id, task_retries)  # noqa: E731
    return {
        "steps": _seq(T("s1"), T("s2"), T("s3"), T("s4")),
        "fanout": _seq(T("prep"), _par(T("f1"), T("f2"), T("f3")), T("join")),
        "gate": _seq(T("build"), _approval("approve"), T("ship")),
        "signal": _seq(T("before"), _signal("wait"), T("after")),
        "mixed": _seq(T("start"),
                      _par(_seq(_approval("gate"), T("gated")),
                           _seq(_signal("hook"), T("hooked")),
                           T("side")),
                      T("end")),
    }


# How often each workflow is launched.
WEIGHTS = {"steps": 2, "fanout": 2, "gate": 3, "signal": 3, "mixed": 2}


def nodes_of(root, kind):
    """Ids of the nodes of one kind, in document order."""
    out = []

    def walk(node):
        (k, body), = node.items()
        if k in ("sequence", "parallel"):
            for child in body:
                walk(child)
        elif k == kind:
            out.append(body["id"])
    walk(root)
    return out


def config(task_retries=0, heartbeat_ms=250):
    """(anvil.yaml text, {relative path: workflow file text})."""
    wfs = workflows(task_retries)
    text = ("listen: 127.0.0.1:0\n"
            "database: anvil.db\n"
            "heartbeatMs: %d\n"
            "auth:\n  mode: token\n  tokens:\n"
            "    %s: { role: operator, scopes: [\"*\"], userId: \"%s\" }\n"
            "workflows:\n" % (heartbeat_ms, TOKEN, USER))
    text += "".join("  %s: { file: wf/%s.yaml }\n" % (k, k) for k in wfs)
    files = {"wf/%s.yaml" % k: yaml.safe_dump({"name": k, "root": root}, sort_keys=False)
             for k, root in wfs.items()}
    return text, files


def launch_input(rng, workflow, nonce, root, min_s=0.05, max_s=0.5):
    """The input of one launch: its nonce (how the oracle finds the run
    without knowing its id), the signal correlation key, and each task's
    sleep."""
    return {"nonce": nonce, "key": "key-" + nonce,
            "t": {t: "%.2f" % rng.uniform(min_s, max_s) for t in nodes_of(root, "task")}}
