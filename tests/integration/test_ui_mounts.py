#!/usr/bin/env python3
"""UI mounts (docs/config.md#ui-mounts): the gateway's `ui` (default "/") and
each workflow's (default /workflows/<key>) serve the HTML shell with
globalThis.__SMITHERS_GATEWAY_UI__ for every path under the mount, and the
prebuilt bundle's files under <mount>/__smithers_ui/; nothing outside the
bundle directory is ever served; listWorkflows reports hasUi/uiPath; the
other routes are unaffected; a bad `ui` is a config error.
"""
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

TOKEN = "ui-token-0001"
WF = "name: %s\nroot:\n  task: { id: t, output: { v: done } }\n"
CONFIG = """listen: 127.0.0.1:0
database: anvil.db
auth:
  mode: token
  tokens:
    %s: { role: operator, scopes: ["*"] }
ui:
  dir: ui-root
  title: 'Ops <b>&"console"</b>'
  props: { banner: "</script><script>alert(1)</script>", levels: [1, 2], nested: { on: true } }
workflows:
  deploy: { file: deploy.yaml, ui: { dir: ui-deploy } }
  custom: { file: custom.yaml, ui: { path: /apps/custom, dir: ui-custom, title: Custom } }
  plain: { file: plain.yaml }
""" % TOKEN
FILES = {
    "deploy.yaml": WF % "deploy", "custom.yaml": WF % "custom", "plain.yaml": WF % "plain",
    "ui-root/client.js": "console.log('root');\n",
    "ui-deploy/client.js": "console.log('deploy');\n",
    "ui-deploy/assets/app.css": "body{color:red}\n",
    "ui-deploy/assets/logo.svg": "<svg xmlns='http://www.w3.org/2000/svg'/>\n",
    "ui-custom/client.js": "console.log('custom');\n",
    "secret.txt": "TOP SECRET\n",
}


def boot_of(html):
    m = re.search(r"<script>globalThis\.__SMITHERS_GATEWAY_UI__=(.*?);</script>", html)
    assert m, html
    return m.group(1)


class UiMounts(harness.ServerTestCase):
    CONFIG = CONFIG
    FILES = FILES

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # A symlink inside the bundle to a file outside it.
        os.symlink(os.path.join(cls.server.dir, "secret.txt"),
                   os.path.join(cls.server.dir, "ui-deploy", "leak.txt"))

    def get(self, path, method="GET"):
        status, headers, body = self.server.request(method, path)
        return status, headers, body.decode("utf-8", "replace")

    def test_gateway_shell_escapes_title_and_boot_config(self):
        status, headers, html = self.get("/")
        self.assertEqual(status, 200)
        self.assertEqual(headers["content-type"], "text/html; charset=utf-8")
        self.assertIn("<title>Ops &lt;b&gt;&amp;&quot;console&quot;&lt;/b&gt;</title>", html)
        raw = boot_of(html)
        self.assertNotIn("</script><script>", raw)
        self.assertIn("\\u003c/script>", raw)
        boot = json.loads(raw)
        self.assertEqual(boot, {
            "apiVersion": "v1", "kind": "gateway", "workflowKey": None, "mountPath": "/",
            "rpcPath": "/v1/rpc", "wsPath": "/", "assetBasePath": "/__smithers_ui/",
            "props": {"banner": "</script><script>alert(1)</script>", "levels": [1, 2],
                      "nested": {"on": True}}})
        self.assertIn('<script type="module" src="/__smithers_ui/client.js"></script>', html)
        # Any other path under "/" is the same app (client-side routes).
        status, _, html2 = self.get("/some/client/route")
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(boot_of(html2))["kind"], "gateway")

    def test_workflow_mounts_default_and_custom_paths(self):
        for path in ("/workflows/deploy", "/workflows/deploy/", "/workflows/deploy/runs/42"):
            status, _, html = self.get(path)
            self.assertEqual(status, 200, path)
            boot = json.loads(boot_of(html))
            self.assertEqual((boot["kind"], boot["workflowKey"], boot["mountPath"], boot["assetBasePath"]),
                             ("workflow", "deploy", "/workflows/deploy", "/workflows/deploy/__smithers_ui/"))
            self.assertEqual(boot["props"], {})
            self.assertIn("<title>deploy | Anvil</title>", html)
        status, _, html = self.get("/apps/custom/x")
        boot = json.loads(boot_of(html))
        self.assertEqual((boot["workflowKey"], boot["mountPath"]), ("custom", "/apps/custom"))
        self.assertIn("<title>Custom</title>", html)
        # A workflow without a ui falls to the gateway's mount.
        status, _, html = self.get("/workflows/plain")
        self.assertEqual(json.loads(boot_of(html))["kind"], "gateway")

    def test_bundle_files_with_their_types(self):
        cases = (("/workflows/deploy/__smithers_ui/client.js", "text/javascript; charset=utf-8", "deploy"),
                 ("/workflows/deploy/__smithers_ui/assets/app.css", "text/css; charset=utf-8", "color:red"),
                 ("/workflows/deploy/__smithers_ui/assets/logo.svg", "image/svg+xml", "<svg"),
                 ("/__smithers_ui/client.js", "text/javascript; charset=utf-8", "root"),
                 ("/apps/custom/__smithers_ui/client.js", "text/javascript; charset=utf-8", "custom"))
        for path, ctype, text in cases:
            status, headers, body = self.get(path)
            self.assertEqual((status, headers["content-type"]), (200, ctype), path)
            self.assertIn(text, body)
        status, headers, body = self.get("/workflows/deploy/__smithers_ui/client.js", "HEAD")
        self.assertEqual((status, body), (200, ""))
        self.assertEqual(headers["content-length"], str(len("console.log('deploy');\n")))

    def test_nothing_outside_the_bundle_is_served(self):
        base = "/workflows/deploy/__smithers_ui/"
        for rel in ("../../anvil.yaml", "../deploy.yaml", "assets/../../secret.txt", "%2e%2e/secret.txt",
                    "..%2fsecret.txt", "leak.txt", "assets", "assets/", "./client.js", ".//client.js",
                    "missing.js", "/etc/passwd", "client.js%00.css"):
            status, _, body = self.get(base + rel)
            self.assertEqual(status, 404, rel)
            self.assertNotIn("TOP SECRET", body)
            self.assertNotIn("auth:", body)
            self.assertEqual(json.loads(body)["error"]["code"], "NotFound", rel)
        status, _, _ = self.get("/workflows/deploy/__smithers_ui")
        self.assertEqual(status, 404)

    def test_other_routes_are_unaffected(self):
        status, _, body = self.get("/health")
        self.assertEqual(status, 200)
        self.assertTrue(json.loads(body)["ok"])
        status, _, doc = self.server.rpc("health", {}, token=TOKEN)
        self.assertEqual(status, 200)
        status, headers, _ = self.get("/workflows/deploy", "POST")
        self.assertEqual(status, 405)
        self.assertEqual(headers["allow"], "GET, HEAD")

    def test_list_workflows_reports_the_mounts(self):
        status, _, doc = self.server.rpc("listWorkflows", {}, token=TOKEN)
        self.assertEqual(status, 200, doc)
        rows = {w["key"]: (w["hasUi"], w["uiPath"]) for w in doc["payload"]}
        self.assertEqual(rows, {"deploy": (True, "/workflows/deploy"), "custom": (True, "/apps/custom"),
                                "plain": (False, None)})


class BadUiConfig(harness.ServerTestCase):
    def check(self, text, expect):
        d = os.path.join(self.server.dir, "bad-%d" % abs(hash(text)))
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "anvil.yaml"), "w", encoding="utf-8") as f:
            f.write(text)
        with open(os.path.join(d, "afile"), "w", encoding="utf-8") as f:
            f.write("x")
        p = harness.run_cli("check-config", os.path.join(d, "anvil.yaml"))
        self.assertNotEqual(p.returncode, 0, text)
        self.assertIn(expect, p.stdout + p.stderr)

    def test_bad_ui_sections_are_refused(self):
        self.check("listen: 127.0.0.1:0\nui: { path: /x }\n",
                   "ui.dir: missing (the directory of the prebuilt bundle to serve)")
        self.check("listen: 127.0.0.1:0\nui: { dir: nowhere }\n", 'ui.dir: "nowhere" is not a directory')
        self.check("listen: 127.0.0.1:0\nui: { dir: afile }\n", 'ui.dir: "afile" is not a directory')
        self.check("listen: 127.0.0.1:0\nui: { dir: ., props: [1] }\n", "ui.props: expected a mapping")
        self.check("listen: 127.0.0.1:0\nui: { dir: ., pth: /x }\n", "pth")


if __name__ == "__main__":
    harness.main()
