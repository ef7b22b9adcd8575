#!/usr/bin/env python3
"""The operator console's HTTP surface (docs/console.md): the page at
console.path (and any path under it) with its Content-Security-Policy and
no-cache; the compiled-in assets under <path>/assets/<version>/, cacheable
for good, every file the page loads present; a stale version, an unknown
file or a traversal is a 404 JSON error; only GET and HEAD; the console
wins over a gateway `ui` at "/"; a moved console and a disabled one.
The page's behaviour in a browser is tests/browser/console.mjs.
"""
import json
import os
import re
import shutil
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

WF = "name: %s\nroot:\n  task: { id: t, output: { v: done } }\n"
BASE_CONFIG = """listen: 127.0.0.1:0
database: anvil.db
auth:
  mode: token
  tokens:
    console-token-01: { role: operator, scopes: ["*"] }
workflows:
  deploy: { file: deploy.yaml }
"""
FILES = {"deploy.yaml": WF % "deploy", "ui-root/client.js": "console.log('root');\n"}
CSP_DIRECTIVES = {
    "default-src": "'none'", "script-src": "'self'", "style-src": "'self'",
    "connect-src": "'self'", "base-uri": "'none'", "form-action": "'none'",
    "frame-ancestors": "'none'", "require-trusted-types-for": "'script'", "trusted-types": "'none'",
}


def csp(headers):
    out = {}
    for part in headers["content-security-policy"].split(";"):
        name, _, value = part.strip().partition(" ")
        out[name] = value
    return out


class Console(harness.ServerTestCase):
    # A gateway UI at "/" would hold every path; the console must still answer.
    CONFIG = BASE_CONFIG + "ui: { dir: ui-root }\n"
    FILES = FILES

    def page(self, path="/console"):
        status, headers, body = self.server.request("GET", path)
        self.assertEqual(status, 200, body)
        return headers, body.decode("utf-8")

    def assets_of(self, html):
        refs = re.findall(r'(?:src|href)="(/console/assets/[^"]+)"', html)
        self.assertTrue(refs, html)
        return refs

    def test_page_has_a_strict_policy_and_is_not_cached(self):
        headers, html = self.page()
        self.assertEqual(headers["content-type"], "text/html; charset=utf-8")
        self.assertEqual(headers["cache-control"], "no-cache")
        policy = csp(headers)
        for name, value in CSP_DIRECTIVES.items():
            self.assertEqual(policy.get(name), value, policy)
        self.assertNotIn("unsafe-inline", headers["content-security-policy"])
        self.assertNotIn("unsafe-eval", headers["content-security-policy"])
        self.assertEqual(headers["x-frame-options"], "DENY")
        self.assertEqual(headers["referrer-policy"], "no-referrer")
        # No inline script (the policy would block it) and nothing from elsewhere.
        self.assertNotRegex(html, r"<script(?![^>]*\bsrc=)[^>]*>")
        self.assertNotRegex(html, r'(?:src|href)="(?:https?:)?//')
        self.assertTrue(all(ref.startswith("/console/assets/") for ref in self.assets_of(html)))

    def test_every_path_under_the_console_is_the_page(self):
        _, html = self.page()
        for path in ("/console/", "/console/runs/anything"):
            self.assertEqual(self.page(path)[1], html)
        status, headers, body = self.server.request("HEAD", "/console")
        self.assertEqual((status, body), (200, b""))
        self.assertEqual(int(headers["content-length"]), len(html.encode()))
        status, headers, body = self.server.request("POST", "/console", body={})
        self.assertEqual(status, 405)
        self.assertEqual(headers["allow"], "GET, HEAD")

    def test_assets_are_compiled_in_and_cacheable_for_good(self):
        _, html = self.page()
        refs = self.assets_of(html)
        version = refs[0].split("/")[3]
        self.assertRegex(version, r"^[0-9a-f]{16}$")
        seen_js = set()
        todo = list(refs)
        # The modules the entry imports, followed as the browser follows them.
        while todo:
            ref = todo.pop()
            if ref in seen_js:
                continue
            seen_js.add(ref)
            status, headers, body = self.server.request("GET", ref)
            self.assertEqual(status, 200, ref)
            self.assertEqual(headers["cache-control"], "public, max-age=31536000, immutable")
            self.assertIn("content-security-policy", headers)
            text = body.decode("utf-8")
            if ref.endswith(".js"):
                self.assertEqual(headers["content-type"], "text/javascript; charset=utf-8")
                folder = ref.rsplit("/", 1)[0]
                for rel in re.findall(r'from "(\./[^"]+|\.\./[^"]+)"', text):
                    todo.append(os.path.normpath(folder + "/" + rel))
            else:
                self.assertEqual(headers["content-type"], "text/css; charset=utf-8")
            # Nothing fetched from anywhere else at run time.
            self.assertNotRegex(text, r"https?://")
        self.assertGreater(len(seen_js), 5, seen_js)

    def test_stale_unknown_and_traversal_assets_are_404(self):
        _, html = self.page()
        ref = self.assets_of(html)[0]
        version = ref.split("/")[3]
        for path in (ref.replace(version, "0" * 16), f"/console/assets/{version}/nope.js",
                     f"/console/assets/{version}/../index.html", f"/console/assets/{version}/",
                     "/console/assets", "/console/assets/"):
            status, headers, body = self.server.request("GET", path)
            self.assertEqual(status, 404, path)
            self.assertEqual(json.loads(body)["error"]["code"], "NotFound", path)
            self.assertEqual(headers["cache-control"], "no-store", path)

    def test_api_answers_keep_no_store(self):
        status, headers, _ = self.server.request("GET", "/health")
        self.assertEqual(status, 200)
        self.assertEqual(headers["cache-control"], "no-store")
        self.assertNotIn("content-security-policy", headers)

    def test_the_gateway_ui_still_holds_other_paths(self):
        status, _, body = self.server.request("GET", "/elsewhere")
        self.assertEqual(status, 200)
        self.assertIn(b"__SMITHERS_GATEWAY_UI__", body)
        status, _, body = self.server.request("GET", "/consoles")
        self.assertIn(b"__SMITHERS_GATEWAY_UI__", body)


class MovedConsole(harness.ServerTestCase):
    CONFIG = BASE_CONFIG + "console: { path: /ops/console-v1.2/ }\n"
    FILES = FILES

    def test_served_at_its_path_only(self):
        status, _, _ = self.server.request("GET", "/console")
        self.assertEqual(status, 404)
        for path in ("/ops/console-v1.2", "/ops/console-v1.2/", "/ops/console-v1.2/runs/x"):
            status, headers, body = self.server.request("GET", path)
            self.assertEqual(status, 200, path)
            self.assertIn("content-security-policy", headers)
        refs = re.findall(r'(?:src|href)="(/[^"]+)"', body.decode())
        self.assertTrue(refs)
        for ref in refs:
            self.assertTrue(ref.startswith("/ops/console-v1.2/assets/"), ref)
            status, _, _ = self.server.request("GET", ref)
            self.assertEqual(status, 200, ref)
        # The template itself is not a file to fetch.
        version = refs[0].split("/")[4]
        status, _, _ = self.server.request("GET", f"/ops/console-v1.2/assets/{version}/index.html")
        self.assertEqual(status, 404)


class ConsolePathRules(unittest.TestCase):
    def test_a_path_a_browser_would_encode_is_a_config_error(self):
        d = tempfile.mkdtemp(prefix="anvil-console-")
        try:
            path = os.path.join(d, "anvil.yaml")
            with open(path, "w", encoding="utf-8") as f:
                f.write('listen: 127.0.0.1:0\ndatabase: anvil.db\nconsole: { path: "/ops/<console>" }\n')
            r = harness.run_cli("check-config", path)
            self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
            self.assertIn("anvil.yaml:3:18: console.path: '<' in \"/ops/<console>\": only letters, digits "
                          "and . _ ~ - / (a browser would percent-encode it)", r.stderr)
        finally:
            shutil.rmtree(d)


class DisabledConsole(harness.ServerTestCase):
    CONFIG = BASE_CONFIG + "console: { enabled: false }\n"
    FILES = FILES

    def test_nothing_is_served(self):
        for path in ("/console", "/console/"):
            status, _, body = self.server.request("GET", path)
            self.assertEqual(status, 404, path)
            self.assertEqual(json.loads(body)["error"]["code"], "NotFound")


if __name__ == "__main__":
    harness.main()
