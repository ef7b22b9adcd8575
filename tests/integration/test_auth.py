"""Authentication and scopes over the wire, in all four auth modes: static
and issued tokens (expiry, revocation through the CLI while the server
runs), the scope rules (implications, legacy ranked grants, method-name and
prefix grants), HS256 JWTs built here, trusted-proxy headers, open mode."""
import base64
import hashlib
import hmac
import json
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

FAR_FUTURE_MS = 32503680000000   # year 3000
EXAMPLES = {m["name"]: m["example"] for m in harness.contract_methods()}
WS_ONLY = {m["name"] for m in harness.websocket_only_methods()}
ALIASES = harness.legacy_aliases()


def canonical(name):
    return ALIASES.get(name, name)


# What an expired JWT tells the client to do (anvil cannot mint JWTs).
JWT_REFRESH = "request a new JWT from your identity provider"

class ScopeAssertions:
    """call(method) as a principal and check it passed the scope check or
    was refused with the right requiredScope."""

    def call(self, method, **auth):
        return self.server.rpc(method, EXAMPLES.get(canonical(method), {}), **auth)

    def assertAllowed(self, method, **auth):
        status, _, doc = self.call(method, **auth)
        with self.subTest(method=method, auth=auth):
            if canonical(method) in WS_ONLY:
                # past the scope check, refused only for the transport
                err = self.assertError(status, doc, "InvalidRequest")
                self.assertIn("WebSocket", err["message"])
            else:
                self.assertPassedScope(status, doc, canonical(method))

    def assertDenied(self, method, scope, **auth):
        status, _, doc = self.call(method, **auth)
        with self.subTest(method=method, auth=auth):
            self.assertForbidden(status, doc, scope, called=method)

    def assertUnauthorized(self, status, doc, headers, refresh=False, message=None):
        err = self.assertError(status, doc, "Unauthorized")
        self.assertEqual(headers.get("www-authenticate"), "Bearer")
        if refresh:
            # Token mode points at `anvil token issue`; JWT mode at the issuer.
            want = refresh if isinstance(refresh, str) else "anvil token issue"
            self.assertEqual(err.get("refresh"), want, doc)
        else:
            self.assertNotIn("refresh", err, doc)
        if message is not None:
            self.assertIn(message, err["message"])
        return err


# ---------------------------------------------------------------------------
# token mode
# ---------------------------------------------------------------------------

TOKENS = {
    "op-token": '{ role: operator, scopes: ["*"], userId: "user:op" }',
    "read-token": '{ role: viewer, scopes: ["run:read"] }',
    "write-token": '{ role: writer, scopes: ["run:write"] }',
    "runadmin-token": '{ role: admin, scopes: ["run:admin"] }',
    "exec-token": '{ role: legacy, scopes: ["execute"] }',
    "legacyread-token": '{ role: legacy, scopes: ["read"] }',
    "approve-token": '{ role: legacy, scopes: ["approve"] }',
    "legacyadmin-token": '{ role: legacy, scopes: ["admin"] }',
    "cronprefix-token": '{ role: legacy, scopes: ["cron.*"] }',
    "framesprefix-token": '{ role: legacy, scopes: ["frames.*"] }',
    "launchonly-token": '{ role: bot, scopes: ["launchRun"] }',
    "cronwrite-token": '{ role: sched, scopes: ["cron:write"] }',
    "cronread-token": '{ role: sched, scopes: ["cron:read"] }',
    "obs-token": '{ role: obs, scopes: ["observability:read"] }',
    "approver-token": '{ role: approver, scopes: ["run:read", "approval:submit"] }',
    "none-token": '{ role: nobody, scopes: [] }',
    "expired-token": '{ role: operator, scopes: ["*"], expiresAtMs: 1000 }',
    "later-expiry-token": '{ role: operator, scopes: ["*"], expiresAtMs: %d }' % FAR_FUTURE_MS,
    "revoked-token": '{ role: operator, scopes: ["*"], revokedAtMs: 1000 }',
    "later-revoked-token": '{ role: operator, scopes: ["*"], revokedAtMs: %d }' % FAR_FUTURE_MS,
    "with-id-token": '{ role: operator, scopes: ["*"], tokenId: cfg-id-1 }',
    "no-id-token": '{ role: operator, scopes: ["*"] }',
    "with-id2-token": '{ role: operator, scopes: ["*"], tokenId: cfg-id-2 }',
}


NOOP_WF = """root:
  task: { id: only, output: { ok: true } }
"""


class TokenMode(ScopeAssertions, harness.ServerTestCase):
    CONFIG = "listen: 127.0.0.1:0\nauth:\n  mode: token\n  tokens:\n" + "".join(
        "    %s: %s\n" % (k, v) for k, v in TOKENS.items()) + \
        "workflows:\n  noop: { file: workflows/noop.yaml }\n"
    FILES = {"workflows/noop.yaml": NOOP_WF}

    def cli(self, *args):
        return self.server.cli(*args)

    # -- presenting the token ----------------------------------------------

    def test_header_forms(self):
        for headers in [{"Authorization": "Bearer op-token"}, {"Authorization": "bearer op-token"},
                        {"Authorization": "BEARER op-token"}, {"Authorization": "BeArEr   op-token  "},
                        {"authorization": "bearer op-token"},
                        {"x-smithers-key": "op-token"}, {"X-Smithers-Key": " op-token "}]:
            with self.subTest(headers=headers):
                status, _, doc = self.server.rpc("health", {}, headers=headers)
                self.assertOk(status, doc)
                # a real launch: the run records who launched it
                status, _, doc = self.server.rpc_frame({"method": "launchRun", "params": {"workflow": "noop"}},
                                                       headers=headers)
                run = self.assertOk(status, doc)
                self.assertEqual(run["workflow"], "noop")
                status, _, doc = self.server.rpc("getRun", {"runId": run["runId"]}, token="op-token")
                view = self.assertOk(status, doc)
                self.assertEqual(view["ownerId"], "user:op")
                self.assertEqual(view["triggeredBy"], "user:op")
                self.assertEqual(view["role"], "operator")
                self.assertEqual(view["scopes"], ["*"])
                self.assertEqual(view["tokenId"], hashlib.sha256(b"op-token").hexdigest()[:16])

    def test_missing_token(self):
        status, h, doc = self.server.rpc("health", {})
        self.assertUnauthorized(status, doc, h, message="Missing bearer token")
        for headers in [{"Authorization": "Bearer "}, {"Authorization": "Bearer"}, {"x-smithers-key": "  "}]:
            with self.subTest(headers=headers):
                status, h, doc = self.server.rpc("health", {}, headers=headers)
                self.assertUnauthorized(status, doc, h)

    def test_wrong_token(self):
        for t in ["nope", "op-token2", "op-toke", "OP-TOKEN", "Bearer op-token"]:
            with self.subTest(token=t):
                status, h, doc = self.server.rpc("health", {}, token=t)
                self.assertUnauthorized(status, doc, h, message="Invalid token")
        status, h, doc = self.server.rpc("health", {}, headers={"x-smithers-key": "nope"})
        self.assertUnauthorized(status, doc, h, message="Invalid token")

    def test_wrong_token_on_every_route(self):
        status, h, doc = self.server.rpc_frame({"method": "health"}, token="nope")
        self.assertUnauthorized(status, doc, h)
        status, h, doc = self.server.rpc_frame({"method": "noSuchMethod"}, token="nope")
        self.assertUnauthorized(status, doc, h)

    def test_auth_happens_before_body_parsing(self):
        for body in [b"{not json", b"[]", b'{"method": 5}', b"[" * 100]:
            with self.subTest(body=body):
                status, h, data = self.server.request("POST", "/rpc", body, {"Authorization": "Bearer nope"})
                self.assertUnauthorized(status, json.loads(data), h)

    def test_health_get_needs_no_token(self):
        status, _, _ = self.server.request("GET", "/health")
        self.assertEqual(status, 200)

    # -- configured token lifecycle ----------------------------------------

    def test_expired_token_gets_refresh_hint(self):
        status, h, doc = self.server.rpc("health", {}, token="expired-token")
        err = self.assertUnauthorized(status, doc, h, refresh=True)
        self.assertIn("expired", err["message"].lower())

    def test_future_expiry_is_fine(self):
        status, _, doc = self.server.rpc("health", {}, token="later-expiry-token")
        self.assertOk(status, doc)

    def test_revoked_token_gets_refresh_hint(self):
        status, h, doc = self.server.rpc("health", {}, token="revoked-token")
        err = self.assertUnauthorized(status, doc, h, refresh=True)
        self.assertIn("revoked", err["message"].lower())

    def test_revocation_in_the_future_is_not_yet_effective(self):
        status, _, doc = self.server.rpc("health", {}, token="later-revoked-token")
        self.assertOk(status, doc)

    def test_revoke_configured_token_by_token_id(self):
        status, _, doc = self.server.rpc("health", {}, token="with-id-token")
        self.assertOk(status, doc)
        r = self.cli("token", "revoke", "cfg-id-1", "--db", self.server.db_path)
        self.assertEqual(r.returncode, 0, r.stderr)
        status, h, doc = self.server.rpc("health", {}, token="with-id-token")
        err = self.assertUnauthorized(status, doc, h, refresh=True)
        self.assertIn("revoked", err["message"].lower())
        # other tokens are untouched
        status, _, doc = self.server.rpc("health", {}, token="op-token")
        self.assertOk(status, doc)

    def test_revoke_configured_token_by_default_id(self):
        default_id = hashlib.sha256(b"no-id-token").hexdigest()[:16]
        status, _, doc = self.server.rpc("health", {}, token="no-id-token")
        self.assertOk(status, doc)
        r = self.cli("token", "revoke", default_id, "--db", self.server.db_path)
        self.assertEqual(r.returncode, 0, r.stderr)
        status, h, doc = self.server.rpc("health", {}, token="no-id-token")
        self.assertUnauthorized(status, doc, h, refresh=True)

    def test_revoke_through_the_config_file(self):
        # no --db: the database is the one the config names (the server's)
        status, _, doc = self.server.rpc("health", {}, token="with-id2-token")
        self.assertOk(status, doc)
        r = self.cli("token", "revoke", "cfg-id-2", "--config", self.server.config_path)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("configured token cfg-id-2", r.stdout)
        status, h, doc = self.server.rpc("health", {}, token="with-id2-token")
        self.assertUnauthorized(status, doc, h, refresh=True)

    # -- issued tokens -----------------------------------------------------

    def issue(self, *extra):
        r = self.cli("token", "issue", "--db", self.server.db_path, *extra)
        self.assertEqual(r.returncode, 0, r.stderr)
        token = r.stdout.strip()
        self.assertRegex(token, r"^anvil_[0-9a-f]{64}$")
        self.assertEqual(r.stdout, token + "\n", "stdout holds the token alone")
        m = re.search(r"issued token id (\S+)", r.stderr)
        self.assertIsNotNone(m, r.stderr)
        return token, m.group(1)

    def test_issued_token_works_then_revoke(self):
        token, tid = self.issue("--role", "viewer", "--scopes", "run:read", "--token-id", "issued-1")
        self.assertEqual(tid, "issued-1")
        self.assertAllowed("getRun", token=token)
        self.assertDenied("launchRun", "run:write", token=token)
        status, _, doc = self.server.rpc("health", {}, headers={"x-smithers-key": token})
        self.assertOk(status, doc)

        r = self.cli("token", "revoke", "issued-1", "--db", self.server.db_path)
        self.assertEqual(r.returncode, 0, r.stderr)
        status, h, doc = self.server.rpc("health", {}, token=token)
        err = self.assertUnauthorized(status, doc, h, refresh=True)
        self.assertIn("revoked", err["message"].lower())

        r = self.cli("token", "revoke", "issued-1", "--db", self.server.db_path)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("already revoked", r.stdout)

    def test_issued_token_default_id_is_sha256_prefix(self):
        token, tid = self.issue("--role", "operator", "--scopes", "run:admin, cron:write", "--user", "user:bot",
                                "--ttl", "1h")
        self.assertEqual(tid, hashlib.sha256(token.encode()).hexdigest()[:16])
        self.assertAllowed("rewindRun", token=token)
        self.assertAllowed("cronCreate", token=token)
        self.assertDenied("submitApproval", "approval:submit", token=token)
        r = self.cli("token", "revoke", tid, "--db", self.server.db_path)
        self.assertEqual(r.returncode, 0, r.stderr)
        status, h, doc = self.server.rpc("health", {}, token=token)
        self.assertUnauthorized(status, doc, h, refresh=True)

    def test_each_issue_prints_a_new_token(self):
        a, _ = self.issue("--role", "r", "--scopes", "run:read")
        b, _ = self.issue("--role", "r", "--scopes", "run:read")
        self.assertNotEqual(a, b)
        for t in (a, b):
            status, _, doc = self.server.rpc("health", {}, token=t)
            self.assertOk(status, doc)

    def test_issued_token_with_legacy_grant(self):
        token, _ = self.issue("--role", "r", "--scopes", "execute")
        self.assertAllowed("launchRun", token=token)
        self.assertDenied("rewindRun", "run:admin", token=token)

    def test_database_keeps_only_hashes(self):
        token, _ = self.issue("--role", "r", "--scopes", "run:read")
        with open(self.server.db_path, "rb") as f:
            data = f.read()
        for suffix in ("-wal",):
            p = self.server.db_path + suffix
            if os.path.exists(p):
                with open(p, "rb") as f:
                    data += f.read()
        self.assertNotIn(token.encode(), data)

    # -- scope rules -------------------------------------------------------

    def test_star_grants_everything(self):
        for m in harness.contract_methods():
            self.assertAllowed(m["name"], token="op-token")

    def test_run_read(self):
        for m in ("getRun", "listRuns", "listWorkflows", "health", "getNodeOutput", "getNodeDiff",
                  "listApprovals", "runs.get", "runs.list", "workflows.list"):
            self.assertAllowed(m, token="read-token")
        for m, scope in [("launchRun", "run:write"), ("runs.create", "run:write"),
                         ("cancelRun", "run:write"), ("resumeRun", "run:write"),
                         ("hijackRun", "run:admin"), ("rewindRun", "run:admin"),
                         ("jumpToFrame", "run:admin"), ("submitApproval", "approval:submit"),
                         ("submitSignal", "signal:submit"), ("cronList", "cron:read"),
                         ("cronCreate", "cron:write"), ("streamDevTools", "observability:read")]:
            self.assertDenied(m, scope, token="read-token")

    def test_scope_table_matches_contract(self):
        # every method refuses a principal without any scope, naming its own scope
        for m in harness.contract_methods():
            self.assertDenied(m["name"], m["scope"], token="none-token")

    def test_run_write_implies_run_read(self):
        for m in ("launchRun", "resumeRun", "cancelRun", "getRun", "listRuns"):
            self.assertAllowed(m, token="write-token")
        self.assertDenied("hijackRun", "run:admin", token="write-token")
        self.assertDenied("cronList", "cron:read", token="write-token")

    def test_run_admin_implies_run_write(self):
        for m in ("rewindRun", "hijackRun", "launchRun", "cancelRun", "getRun"):
            self.assertAllowed(m, token="runadmin-token")
        self.assertDenied("submitApproval", "approval:submit", token="runadmin-token")
        self.assertDenied("cronList", "cron:read", token="runadmin-token")

    def test_cron_write_implies_cron_read(self):
        for m in ("cronList", "cronCreate", "cronDelete", "cronRun"):
            self.assertAllowed(m, token="cronwrite-token")
        self.assertDenied("getRun", "run:read", token="cronwrite-token")
        self.assertAllowed("cronList", token="cronread-token")
        self.assertDenied("cronCreate", "cron:write", token="cronread-token")

    def test_legacy_execute(self):
        for m in ("launchRun", "runs.create", "getRun", "submitSignal", "cronCreate", "cronList", "cancelRun"):
            self.assertAllowed(m, token="exec-token")
        self.assertDenied("submitApproval", "approval:submit", token="exec-token")
        self.assertDenied("rewindRun", "run:admin", token="exec-token")
        self.assertDenied("streamDevTools", "observability:read", token="exec-token")

    def test_legacy_read(self):
        for m in ("getRun", "cronList", "streamDevTools"):
            self.assertAllowed(m, token="legacyread-token")
        self.assertDenied("launchRun", "run:write", token="legacyread-token")
        self.assertDenied("cronCreate", "cron:write", token="legacyread-token")

    def test_legacy_approve(self):
        for m in ("submitApproval", "approvals.decide", "launchRun", "submitSignal"):
            self.assertAllowed(m, token="approve-token")
        self.assertDenied("rewindRun", "run:admin", token="approve-token")

    def test_legacy_admin(self):
        for m in harness.contract_methods():
            self.assertAllowed(m["name"], token="legacyadmin-token")

    def test_prefix_grant_covers_legacy_names_only(self):
        for m in ("cron.add", "cron.list", "cron.remove", "cron.trigger"):
            self.assertAllowed(m, token="cronprefix-token")
        # "cron.*" matches the name called, not the canonical method
        self.assertDenied("cronCreate", "cron:write", token="cronprefix-token")
        self.assertDenied("cronList", "cron:read", token="cronprefix-token")
        self.assertDenied("getRun", "run:read", token="cronprefix-token")

    def test_method_name_grant(self):
        self.assertAllowed("launchRun", token="launchonly-token")
        self.assertDenied("getRun", "run:read", token="launchonly-token")
        self.assertDenied("cancelRun", "run:write", token="launchonly-token")

    def test_observability_read(self):
        self.assertAllowed("streamDevTools", token="obs-token")
        self.assertDenied("streamRunEvents", "run:read", token="obs-token")
        self.assertDenied("getRun", "run:read", token="obs-token")

    def test_approver(self):
        self.assertAllowed("submitApproval", token="approver-token")
        self.assertAllowed("listApprovals", token="approver-token")
        self.assertDenied("submitSignal", "signal:submit", token="approver-token")

    def test_unknown_methods_need_their_fallback_scope(self):
        status, _, doc = self.server.rpc("frobnicate", {}, token="read-token")
        self.assertError(status, doc, "MethodNotFound", 404)
        self.assertDenied("frobnicate", "run:read", token="cronread-token")
        self.assertDenied("frobnicate", "run:read", token="none-token")
        self.assertDenied("config.reload", "run:admin", token="write-token")
        status, _, doc = self.server.rpc("config.reload", {}, token="runadmin-token")
        self.assertError(status, doc, "MethodNotFound", 404)

    def test_former_utility_names_are_methods(self):
        # The seed's legacy utilities are contract methods now: the same
        # scopes, then validation and the handler, never MethodNotFound.
        for name, scope, token in [("approve", "approval:submit", "approver-token"),
                                   ("getDevToolsSnapshot", "observability:read", "obs-token"),
                                   ("runs.rerun", "run:write", "write-token"),
                                   ("frames.list", "run:read", "read-token"),
                                   ("frames.get", "run:read", "read-token"),
                                   ("attempts.list", "run:read", "read-token"),
                                   ("attempts.get", "run:read", "read-token"),
                                   ("runs.diff", "run:read", "read-token")]:
            with self.subTest(method=name):
                self.assertDenied(name, scope, token="none-token")
                self.assertDenied(name, scope, token="cronread-token")
                self.assertAllowed(name, token=token)
                status, _, doc = self.server.rpc(name, {}, token=token)
                self.assertError(status, doc, "InvalidRequest", path="$.params.runId")
        # "frames.*" is a prefix grant like "cron.*"
        self.assertAllowed("frames.list", token="framesprefix-token")
        self.assertAllowed("frames.get", token="framesprefix-token")
        self.assertDenied("attempts.list", "run:read", token="framesprefix-token")

    def test_scope_is_checked_before_validation(self):
        status, _, doc = self.server.rpc("launchRun", {"bogus": 1}, token="read-token")
        self.assertForbidden(status, doc, "run:write")
        status, _, doc = self.server.rpc("launchRun", {"bogus": 1}, token="write-token")
        self.assertError(status, doc, "InvalidRequest", path="$.params.bogus")


# ---------------------------------------------------------------------------
# JWT mode
# ---------------------------------------------------------------------------

def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_jwt(claims, secret, header=None):
    header = header or {"alg": "HS256", "typ": "JWT"}
    signing = b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())
    sig = hmac.new(secret.encode(), signing.encode(), hashlib.sha256).digest()
    return signing + "." + b64url(sig)


SECRET = "jwt-secret-for-integration-tests"


class JwtMode(ScopeAssertions, harness.ServerTestCase):
    CONFIG = """listen: 127.0.0.1:0
auth:
  mode: jwt
  jwt:
    secret: %s
    issuer: anvil-tests
    audience: anvil
    defaultRole: viewer
    defaultScopes: [run:read]
""" % SECRET

    def claims(self, **over):
        now = int(time.time())
        c = {"iss": "anvil-tests", "aud": "anvil", "sub": "user:jwt", "iat": now, "exp": now + 3600}
        c.update(over)
        return {k: v for k, v in c.items() if v is not None}

    def token(self, **over):
        return make_jwt(self.claims(**over), SECRET)

    def test_valid_token_scope_string(self):
        t = self.token(scope="run:read run:write")
        self.assertAllowed("launchRun", token=t)
        self.assertAllowed("getRun", token=t)
        self.assertDenied("rewindRun", "run:admin", token=t)

    def test_valid_token_scope_array(self):
        t = self.token(scope=["run:read", "cron:read"])
        self.assertAllowed("getRun", token=t)
        self.assertAllowed("cronList", token=t)
        self.assertDenied("launchRun", "run:write", token=t)

    def test_default_scopes_without_scope_claim(self):
        t = self.token()
        self.assertAllowed("getRun", token=t)
        self.assertDenied("launchRun", "run:write", token=t)

    def test_jwt_in_x_smithers_key(self):
        status, _, doc = self.server.rpc("health", {}, headers={"x-smithers-key": self.token(scope="*")})
        self.assertOk(status, doc)

    def test_wrong_signature(self):
        t = make_jwt(self.claims(scope="*"), "another-secret")
        status, h, doc = self.server.rpc("health", {}, token=t)
        self.assertUnauthorized(status, doc, h, message="signature")

    def test_tampered_payload(self):
        good = self.token(scope="run:read")
        head, _, sig = good.split(".")
        forged = head + "." + b64url(json.dumps(self.claims(scope="*")).encode()) + "." + sig
        status, h, doc = self.server.rpc("launchRun", EXAMPLES["launchRun"], token=forged)
        self.assertUnauthorized(status, doc, h)

    def test_alg_none(self):
        claims = b64url(json.dumps(self.claims(scope="*")).encode())
        for header in [{"alg": "none", "typ": "JWT"}, {"alg": "None"}, {"typ": "JWT"}]:
            h64 = b64url(json.dumps(header).encode())
            for t in [h64 + "." + claims + ".", h64 + "." + claims]:
                with self.subTest(token=t):
                    status, h, doc = self.server.rpc("health", {}, token=t)
                    self.assertUnauthorized(status, doc, h)

    def test_other_algorithms_refused(self):
        for alg in ("HS512", "RS256", "hs256"):
            with self.subTest(alg=alg):
                t = make_jwt(self.claims(scope="*"), SECRET, {"alg": alg, "typ": "JWT"})
                status, h, doc = self.server.rpc("health", {}, token=t)
                self.assertUnauthorized(status, doc, h)

    def test_expired_token_gets_refresh_hint(self):
        now = int(time.time())
        t = self.token(scope="*", iat=now - 7200, exp=now - 3600)
        status, h, doc = self.server.rpc("health", {}, token=t)
        err = self.assertUnauthorized(status, doc, h, refresh=JWT_REFRESH)
        self.assertIn("expired", err["message"].lower())

    def test_expiry_within_clock_skew_is_accepted(self):
        t = self.token(scope="*", exp=int(time.time()) - 5)   # default skew is 60 s
        status, _, doc = self.server.rpc("health", {}, token=t)
        self.assertOk(status, doc)

    def test_not_before_within_clock_skew_is_accepted(self):
        t = self.token(scope="*", nbf=int(time.time()) + 5)   # default skew is 60 s
        status, _, doc = self.server.rpc("health", {}, token=t)
        self.assertOk(status, doc)

    def test_not_before_in_the_future(self):
        t = self.token(scope="*", nbf=int(time.time()) + 3600)
        status, h, doc = self.server.rpc("health", {}, token=t)
        self.assertUnauthorized(status, doc, h, refresh=False)

    def test_issuer_mismatch(self):
        for iss in ("someone-else", None, 5):
            with self.subTest(iss=iss):
                status, h, doc = self.server.rpc("health", {}, token=self.token(scope="*", iss=iss))
                self.assertUnauthorized(status, doc, h)

    def test_audience(self):
        for aud in ("other", None, ["x", "y"]):
            with self.subTest(aud=aud):
                status, h, doc = self.server.rpc("health", {}, token=self.token(scope="*", aud=aud))
                self.assertUnauthorized(status, doc, h)
        status, _, doc = self.server.rpc("health", {}, token=self.token(scope="*", aud=["x", "anvil"]))
        self.assertOk(status, doc)

    def test_malformed_tokens(self):
        good = self.token(scope="*")
        for t in ["abc", "a.b", "a.b.c.d", good + "x", good.replace(".", "..", 1), "op-token",
                  good[:-2], "." + good]:
            with self.subTest(token=t):
                status, h, doc = self.server.rpc("health", {}, token=t)
                self.assertUnauthorized(status, doc, h)

    def test_missing_token(self):
        status, h, doc = self.server.rpc("health", {})
        self.assertUnauthorized(status, doc, h)


class JwtFlatConfig(ScopeAssertions, harness.ServerTestCase):
    """JWT options written flat under auth:, a custom scopes claim, no
    issuer/audience, and clockSkewSeconds 0."""
    CONFIG = """listen: 127.0.0.1:0
auth:
  mode: jwt
  secret: flat-secret
  scopesClaim: permissions
  clockSkewSeconds: 0
"""

    def test_custom_scopes_claim(self):
        now = int(time.time())
        t = make_jwt({"sub": "u", "exp": now + 600, "scope": "*", "permissions": ["run:read"]}, "flat-secret")
        self.assertAllowed("getRun", token=t)
        self.assertDenied("launchRun", "run:write", token=t)

    def test_no_issuer_or_audience_required(self):
        t = make_jwt({"permissions": "run:write"}, "flat-secret")
        self.assertAllowed("launchRun", token=t)

    def test_zero_clock_skew(self):
        t = make_jwt({"permissions": "*", "exp": int(time.time()) - 5}, "flat-secret")
        status, h, doc = self.server.rpc("health", {}, token=t)
        self.assertUnauthorized(status, doc, h, refresh=JWT_REFRESH)

    def test_no_scopes_and_no_defaults_means_nothing(self):
        t = make_jwt({"sub": "u"}, "flat-secret")
        self.assertDenied("getRun", "run:read", token=t)


# ---------------------------------------------------------------------------
# trusted-proxy mode
# ---------------------------------------------------------------------------

class TrustedProxy(ScopeAssertions, harness.ServerTestCase):
    CONFIG = """listen: 127.0.0.1:0
auth:
  mode: trusted-proxy
  defaultScopes: [run:read]
workflows:
  noop: { file: workflows/noop.yaml }
"""
    FILES = {"workflows/noop.yaml": NOOP_WF}

    def test_identity_and_scopes_from_headers(self):
        h = {"x-user-id": "user:alice", "x-user-scopes": "run:read run:write", "x-user-role": "operator"}
        self.assertAllowed("launchRun", headers=h)
        self.assertDenied("rewindRun", "run:admin", headers=h)
        # the run records the proxy's identity
        status, _, doc = self.server.rpc("launchRun", {"workflow": "noop"}, headers=h)
        run_id = self.assertOk(status, doc)["runId"]
        status, _, doc = self.server.rpc("getRun", {"runId": run_id}, headers=h)
        view = self.assertOk(status, doc)
        self.assertEqual(view["ownerId"], "user:alice")
        self.assertEqual(view["role"], "operator")
        self.assertEqual(view["scopes"], ["run:read", "run:write"])

    def test_comma_separated_scopes(self):
        h = {"x-user-id": "user:alice", "x-user-scopes": "run:read, cron:read"}
        self.assertAllowed("cronList", headers=h)
        self.assertAllowed("getRun", headers=h)
        self.assertDenied("cronCreate", "cron:write", headers=h)

    def test_default_scopes_without_scope_header(self):
        h = {"x-user-id": "user:bob"}
        self.assertAllowed("getRun", headers=h)
        self.assertDenied("launchRun", "run:write", headers=h)

    def test_missing_identity_header(self):
        for h in [{}, {"x-user-scopes": "*"}, {"x-user-id": "  ", "x-user-scopes": "*"},
                  {"Authorization": "Bearer whatever"}]:
            with self.subTest(headers=h):
                status, hdrs, doc = self.server.rpc("health", {}, headers=h)
                self.assertUnauthorized(status, doc, hdrs, message="x-user-id")


class TrustedProxyCustomHeaders(ScopeAssertions, harness.ServerTestCase):
    CONFIG = """listen: 127.0.0.1:0
auth:
  mode: trusted-proxy
  trustedHeaders: [x-remote-user, x-remote-scopes, x-remote-role]
"""

    def test_custom_headers(self):
        self.assertAllowed("launchRun", headers={"x-remote-user": "u", "x-remote-scopes": "*"})
        self.assertDenied("launchRun", "run:write",
                          headers={"x-remote-user": "u", "x-remote-scopes": "run:read", "x-user-scopes": "*"})

    def test_default_headers_are_not_trusted(self):
        status, h, doc = self.server.rpc("health", {}, headers={"x-user-id": "u", "x-user-scopes": "*"})
        self.assertUnauthorized(status, doc, h, message="x-remote-user")


# ---------------------------------------------------------------------------
# open mode
# ---------------------------------------------------------------------------

class OpenMode(ScopeAssertions, harness.ServerTestCase):
    CONFIG = "listen: 127.0.0.1:0\n"

    def test_everything_allowed_without_credentials(self):
        for m in harness.contract_methods():
            self.assertAllowed(m["name"])

    def test_credentials_are_ignored(self):
        self.assertAllowed("rewindRun", token="garbage")
        self.assertAllowed("cronCreate", headers={"x-smithers-key": "garbage"})

    def test_warning_logged(self):
        self.assertIn("NO AUTH CONFIGURED", self.server.stderr())

    def test_no_warning_when_auth_configured(self):
        s = harness.Server("listen: 127.0.0.1:0\nauth:\n  mode: token\n  tokens:\n    t: { role: r }\n").start()
        try:
            status, _, _ = s.request("GET", "/health")
            self.assertEqual(status, 200)
            s.stop()
            self.assertNotIn("NO AUTH CONFIGURED", s.stderr())
        finally:
            if s.proc:
                s.proc.kill()
                s.proc.wait()
            s.cleanup()


if __name__ == "__main__":
    harness.main()
