#!/usr/bin/env python3
"""Anvil's structure check: the layers of runtime/ and the files in circles.

Two passes, both run by `make check`:

  check-layers.py                 the #include "..." graph of the sources:
                                  every quoted include resolves to exactly
                                  one header; a file includes only its own
                                  layer and the layers below it; a private
                                  header (*_internal.h) is included only from
                                  its own folder; no two modules (a .c with
                                  its same-named .h) include each other,
                                  directly or round a longer circle.
  check-layers.py --objects DIR   the link graph of the layer libraries
                                  (libanvil_<layer>.a) under DIR, a CMake
                                  build tree: no object calls into a higher
                                  or sibling layer, and no two objects call
                                  each other, directly or round a circle.
                                  This sees what includes cannot, e.g. a
                                  header that declares functions of several
                                  .c files.

The layer order below is the one docs/architecture.md draws (and the one
runtime/CMakeLists.txt links); change them together. Standard library and
binutils' nm only, so any python3 runs it. CTest runs both passes
(structure.includes, structure.links) in every build.
"""
import argparse
import os
import re
import subprocess
import sys

# Lowest first. A layer may include itself and every layer of a lower rank;
# layers of the same rank are siblings and may not include each other.
LAYERS = [
    ("base",     0, ["runtime/base"]),
    ("auth",     1, ["runtime/auth"]),
    ("contract", 2, ["runtime/contract", "generated"]),
    ("http",     3, ["runtime/http"]),
    ("client",   3, ["runtime/client", "generated/clients/c"]),
    ("config",   4, ["runtime/config"]),
    ("store",    5, ["runtime/store"]),
    ("engine",   6, ["runtime/engine"]),
    ("cron",     7, ["runtime/cron"]),
    ("handlers", 8, ["handlers"]),
    ("ws",       8, ["runtime/ws"]),
    ("server",   9, ["runtime/server"]),
    ("cli",     10, ["runtime/cli"]),
]

INCLUDE_RE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def layer_of(folder):
    for name, rank, folders in LAYERS:
        if folder in folders:
            return name, rank
    return None, None


def source_files(top):
    out = []
    for _, _, folders in LAYERS:
        for folder in folders:
            path = os.path.join(top, folder)
            if not os.path.isdir(path):
                continue
            for name in sorted(os.listdir(path)):
                if name.endswith((".c", ".h")):
                    out.append(os.path.join(folder, name))
    return out


def module_of(relpath):
    """A module is a .c and its same-named .h; foo_internal.h is foo's."""
    folder, name = os.path.split(relpath)
    stem = os.path.splitext(name)[0]
    if stem.endswith("_internal"):
        stem = stem[: -len("_internal")]
    return folder + "/" + stem


def circles(graph):
    """Strongly connected components with more than one node (Tarjan,
    iterative so deep graphs cannot overflow the stack)."""
    index, low, on_stack, stack, found = {}, {}, set(), [], []
    counter = [0]
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.get(root, ()))))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, it = work[-1]
            advanced = False
            for nxt in it:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter[0]
                    counter[0] += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph.get(nxt, ())))))
                    advanced = True
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    top = stack.pop()
                    on_stack.discard(top)
                    comp.append(top)
                    if top == node:
                        break
                if len(comp) > 1:
                    found.append(sorted(comp))
    return found


def check_includes(top):
    problems = []
    files = source_files(top)
    headers = {}
    for f in files:
        if f.endswith(".h"):
            headers.setdefault(os.path.basename(f), []).append(f)
    for name, where in headers.items():
        if len(where) > 1:
            problems.append("header %s exists in %s: names must be unique across layers"
                            % (name, " and ".join(where)))
    graph = {}
    for f in files:
        folder = os.path.dirname(f)
        lname, rank = layer_of(folder)
        with open(os.path.join(top, f), encoding="utf-8") as fh:
            text = fh.read()
        mod = module_of(f)
        graph.setdefault(mod, set())
        for inc in INCLUDE_RE.findall(text):
            where = headers.get(os.path.basename(inc))
            if not where or "/" in inc:
                problems.append('%s: #include "%s" names no header of a layer '
                                "(include by bare name; each layer's folder is its include directory)"
                                % (f, inc))
                continue
            target = where[0]
            tfolder = os.path.dirname(target)
            tname, trank = layer_of(tfolder)
            if tname != lname:
                if trank > rank:
                    problems.append('%s: #include "%s" reaches up from layer %s (rank %d) to %s (rank %d)'
                                    % (f, inc, lname, rank, tname, trank))
                elif trank == rank:
                    problems.append('%s: #include "%s": sibling layers %s and %s may not include each other'
                                    % (f, inc, lname, tname))
            if target.endswith("_internal.h") and tfolder != folder:
                problems.append('%s: #include "%s" is private to %s' % (f, inc, tfolder))
            tmod = module_of(target)
            if tmod != mod:
                graph[mod].add(tmod)
    for comp in circles(graph):
        problems.append("include circle: " + " -> ".join(comp))
    return problems, len(files)


LIB_RE = re.compile(r"^libanvil_([a-z]+)\.a$")


def check_objects(build):
    """The members of the anvil_<layer> static libraries (rebuilt from the
    current sources, so stale objects of moved files do not count): who
    defines and who uses each global symbol; then no object may call into a
    higher (or a sibling) layer, and no objects may call each other round a
    circle."""
    ranks = {name: rank for name, rank, _ in LAYERS}
    libs = []
    for root, _, names in os.walk(build):
        for n in names:
            m = LIB_RE.match(n)
            if m and m.group(1) in ranks:
                libs.append((m.group(1), os.path.join(root, n)))
    if not libs:
        return ["no libanvil_<layer>.a under %s: build first" % build], 0
    defined, used, layer = {}, {}, {}
    for lname, lib in libs:
        out = subprocess.run(["nm", "-g", lib], capture_output=True, text=True, check=True).stdout
        member = None
        for line in out.splitlines():
            if line.endswith(".o:"):
                member = lname + "/" + line[:-len(".o:")]
                layer[member] = lname
                used[member] = set()
                continue
            parts = line.split()
            if member is None:
                continue
            if len(parts) == 2 and parts[0] == "U":
                used[member].add(parts[1])
            elif len(parts) == 3 and parts[1] in "TDRBCV":
                defined[parts[2]] = member
    problems = []
    graph = {}
    for o, syms in sorted(used.items()):
        graph[o] = set()
        for sym in sorted(syms):
            d = defined.get(sym)
            if d is None or d == o:
                continue
            graph[o].add(d)
            lo, ld = layer[o], layer[d]
            if lo != ld and ranks[ld] >= ranks[lo]:
                problems.append("%s (layer %s) calls %s of %s (layer %s)" % (o, lo, sym, d, ld))
    problems += ["link circle (these files call each other): " + " -> ".join(c)
                 for c in circles(graph)]
    return problems, len(used)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--top", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    ap.add_argument("--objects", metavar="BUILD_DIR", help="check the link graph of a build tree instead")
    args = ap.parse_args()
    if args.objects:
        problems, n = check_objects(args.objects)
        what = "objects"
    else:
        problems, n = check_includes(os.path.abspath(args.top))
        what = "source files"
    for p in problems:
        print("check-layers: " + p)
    if problems:
        print("check-layers: %d problem(s) in %d %s" % (len(problems), n, what))
        return 1
    print("check-layers: %d %s, layers and circles clean" % (n, what))
    return 0


if __name__ == "__main__":
    sys.exit(main())
