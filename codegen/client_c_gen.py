"""codegen/client_c_gen.py — the per-method functions of the C client.

Emits generated/clients/c/anvil_client_methods.{h,c}: for every method of
the spec, a blocking and an event-loop function over HTTP (methods whose
transport includes http) and a blocking function over the WebSocket
(methods whose transport includes websocket). Each is a one-line wrapper
that names the method's row in the generated method table; the transport
and the codec are hand-written once in runtime/client/ and shared by all.
Called from anvil_codegen.py with the model and the jinja2 environment.
"""

OUTPUTS = [
    ("clients/c/anvil_client_methods.h", "clients/c/methods.h.j2"),
    ("clients/c/anvil_client_methods.c", "clients/c/methods.c.j2"),
]


def render(model, env, banner):
    """{relative path: text} for the C client; banner(fname) opens each file."""
    out = {}
    for rel, tname in OUTPUTS:
        fname = rel.rsplit("/", 1)[-1]
        out[rel] = banner(fname) + env.get_template(tname).render(m=model, fname=fname)
    return out
