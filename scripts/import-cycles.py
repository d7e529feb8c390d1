#!/usr/bin/env python3
"""Checks that src/ has no import circle (issue 14): neither between top-level modules
(`crate::a` ↔ `crate::b`) nor between the files of one module (`kustomize::file` ↔
`kustomize::build`). A child module using its parent (`build/plugins.rs` → `build`) is the
parent's own inside and does not count. Test modules (`#[cfg(test)]` and `tests.rs`) are left
out, and so are comments. Prints each circle and exits 1 when there is one.

Usage: scripts/import-cycles.py [SRC_DIR]
"""

import os
import re
import sys
from collections import defaultdict


def module_path(src, path):
    parts = os.path.relpath(path, src)[:-3].split(os.sep)
    if parts[-1] == "mod":
        parts = parts[:-1]
    return parts


def code_of(path):
    text = open(path, encoding="utf-8").read()
    text = re.split(r"#\[cfg\(test\)\]", text)[0]
    return "\n".join(l for l in text.split("\n") if not l.strip().startswith("//"))


def graph(src, level):
    """Edges between modules named by their first `level` path segments."""
    edges = defaultdict(set)
    for root, _, files in os.walk(src):
        for f in files:
            if not f.endswith(".rs") or f == "tests.rs" or f.endswith("_tests.rs"):
                continue
            path = os.path.join(root, f)
            parts = module_path(src, path)
            if len(parts) < level:
                continue
            me = "::".join(parts[:level])
            code = code_of(path)
            targets = set()
            for m in re.finditer(r"\bcrate::((?:[a-z_][a-z0-9_]*)(?:::[a-z_][a-z0-9_]*)*)", code):
                targets.add(tuple(m.group(1).split("::")))
            # `super::x` in a file of module `parts` names a sibling `parts[:-1] + x`.
            for m in re.finditer(r"\bsuper::([a-z_][a-z0-9_]*)", code):
                targets.add(tuple(parts[:-1]) + (m.group(1),))
            for grp in re.findall(r"\bsuper::\{([^}]*)\}", code):
                for item in grp.split(","):
                    head = item.strip().split("::")[0]
                    if re.fullmatch(r"[a-z_][a-z0-9_]*", head):
                        targets.add(tuple(parts[:-1]) + (head,))
            for t in targets:
                if len(t) < level:
                    continue
                name = "::".join(t[:level])
                # Same prefix of `level - 1` segments (siblings) at level 2; anything at level 1.
                if name != me and t[: level - 1] == tuple(parts[: level - 1]):
                    edges[me].add(name)
    return edges


def circles(edges):
    index, low, stack, on, found = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def main():
    src = sys.argv[1] if len(sys.argv) > 1 else "src"
    bad = []
    for level in (1, 2):
        bad += circles(graph(src, level))
    for c in bad:
        print("import circle: " + " <-> ".join(c), file=sys.stderr)
    if bad:
        return 1
    print("no import circle in %s (top-level modules and the files of each module)" % src)
    return 0


if __name__ == "__main__":
    sys.exit(main())
