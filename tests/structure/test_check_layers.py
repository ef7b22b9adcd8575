"""scripts/check-layers.py on small made-up trees: it must pass a clean tree
and name each kind of violation it exists to catch. Run by CTest as
structure.self_test; standard library only."""
import os
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "..", "..", "scripts", "check-layers.py")


def run(files):
    with tempfile.TemporaryDirectory() as top:
        for rel, text in files.items():
            path = os.path.join(top, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w") as f:
                f.write(text)
        p = subprocess.run([sys.executable, SCRIPT, "--top", top], capture_output=True, text=True)
        return p.returncode, p.stdout + p.stderr


CLEAN = {
    "runtime/base/clock.h": "int now(void);\n",
    "runtime/base/clock.c": '#include "clock.h"\n',
    "runtime/store/store.h": '#include "clock.h"\n',
    "runtime/store/store.c": '#include "store.h"\n#include "store_internal.h"\n',
    "runtime/store/store_internal.h": '#include "store.h"\n',
    "runtime/engine/engine.c": '#include "store.h"\n#include "clock.h"\n',
}


def run_objects(libs):
    """Compile {layer: {file.c: source}} into libanvil_<layer>.a archives and
    run the link pass over them."""
    with tempfile.TemporaryDirectory() as build:
        for layer, sources in libs.items():
            objs = []
            for name, text in sources.items():
                src = os.path.join(build, layer + "_" + name)
                with open(src, "w") as f:
                    f.write(text)
                obj = os.path.join(build, name[:-2] + ".c.o")
                subprocess.run(["cc", "-c", "-o", obj, src], check=True)
                objs.append(obj)
            subprocess.run(["ar", "rcs", os.path.join(build, "libanvil_%s.a" % layer)] + objs,
                           check=True)
            for o in objs:
                os.unlink(o)
        p = subprocess.run([sys.executable, SCRIPT, "--objects", build], capture_output=True, text=True)
        return p.returncode, p.stdout + p.stderr


class CheckLinks(unittest.TestCase):
    def test_clean_link_graph_passes(self):
        rc, out = run_objects({"base": {"clock.c": "int now(void) { return 1; }\n"},
                               "store": {"store.c": "int now(void);\nint get(void) { return now(); }\n"}})
        self.assertEqual(rc, 0, out)

    def test_upward_call(self):
        rc, out = run_objects({"base": {"clock.c": "int get(void);\nint now(void) { return get(); }\n"},
                               "store": {"store.c": "int get(void) { return 2; }\n"}})
        self.assertEqual(rc, 1, out)
        self.assertIn("base/clock.c (layer base) calls get of store/store.c (layer store)", out)

    def test_files_calling_each_other(self):
        rc, out = run_objects({"engine": {
            "run.c": "int task_start(void);\nint run_advance(void) { return task_start(); }\n",
            "task.c": "int run_advance(void);\nint task_start(void) { return 0; }\n"
                      "int task_done(void) { return run_advance(); }\n"}})
        self.assertEqual(rc, 1, out)
        self.assertIn("link circle (these files call each other): engine/run.c -> engine/task.c", out)


class CheckLayers(unittest.TestCase):
    def test_clean_tree_passes(self):
        rc, out = run(CLEAN)
        self.assertEqual(rc, 0, out)
        self.assertIn("clean", out)

    def test_upward_include(self):
        rc, out = run(dict(CLEAN, **{"runtime/base/clock.c": '#include "clock.h"\n#include "store.h"\n'}))
        self.assertEqual(rc, 1, out)
        self.assertIn('runtime/base/clock.c: #include "store.h" reaches up from layer base', out)

    def test_sibling_include(self):
        rc, out = run(dict(CLEAN, **{"handlers/runs.c": '#include "ws.h"\n', "runtime/ws/ws.h": ""}))
        self.assertEqual(rc, 1, out)
        self.assertIn("sibling layers handlers and ws", out)

    def test_private_header_from_another_folder(self):
        rc, out = run(dict(CLEAN, **{"runtime/engine/engine.c": '#include "store_internal.h"\n'}))
        self.assertEqual(rc, 1, out)
        self.assertIn('"store_internal.h" is private to runtime/store', out)

    def test_unknown_and_path_includes(self):
        rc, out = run(dict(CLEAN, **{"runtime/engine/engine.c": '#include "nowhere.h"\n#include "../base/clock.h"\n'}))
        self.assertEqual(rc, 1, out)
        self.assertIn('#include "nowhere.h" names no header', out)
        self.assertIn('#include "../base/clock.h" names no header', out)

    def test_circle(self):
        files = dict(CLEAN)
        files.update({
            "runtime/engine/run.h": "", "runtime/engine/task.h": "",
            "runtime/engine/run.c": '#include "run.h"\n#include "task.h"\n',
            "runtime/engine/task.c": '#include "task.h"\n#include "run.h"\n',
        })
        rc, out = run(files)
        self.assertEqual(rc, 1, out)
        self.assertIn("include circle: runtime/engine/run -> runtime/engine/task", out)

    def test_duplicate_header_names(self):
        rc, out = run(dict(CLEAN, **{"runtime/engine/clock.h": ""}))
        self.assertEqual(rc, 1, out)
        self.assertIn("header clock.h exists in", out)


if __name__ == "__main__":
    unittest.main()
