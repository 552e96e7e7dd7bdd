#!/usr/bin/env python3
"""Fails when the top-level modules of src/ import each other in a circle (issue 12).

A top-level module is a file or folder directly under src/ (lib.rs, main.rs and bin/ aside).
An edge a -> b is a `crate::b` path in a's code (comments and #[cfg(test)] tails skipped).
Prints the edges, and the circles if any; exit 1 on a circle.
"""
import os
import re
import sys

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")
mods = {}
for e in os.listdir(root):
    p = os.path.join(root, e)
    if e.endswith(".rs") and e not in ("lib.rs", "main.rs"):
        mods[e[:-3]] = [p]
    elif os.path.isdir(p) and e != "bin":
        mods[e] = [os.path.join(d, f) for d, _, fs in os.walk(p) for f in fs if f.endswith(".rs")]

graph = {m: set() for m in mods}
for m, files in mods.items():
    for f in files:
        if os.path.basename(f) == "tests.rs" or os.sep + "tests" + os.sep in f:
            continue
        lines = open(f, encoding="utf-8").read().split("\n")
        cut = next((i for i, l in enumerate(lines) if l.strip() == "#[cfg(test)]"), len(lines))
        code = "\n".join(l for l in lines[:cut] if not l.strip().startswith("//"))
        names = re.findall(r"crate::(\w+)", code)
        for group in re.findall(r"crate::\{([^}]*)\}", code):
            names += re.findall(r"(\w+)", group)
        graph[m] |= {n for n in names if n in graph and n != m}

# Tarjan's strongly connected components: any with more than one module is a circle.
index, low, stack, on, circles, counter = {}, {}, [], set(), [], [0]

def visit(v):
    index[v] = low[v] = counter[0]
    counter[0] += 1
    stack.append(v)
    on.add(v)
    for w in graph[v]:
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
            circles.append(sorted(comp))

for v in sorted(graph):
    if v not in index:
        visit(v)
for m in sorted(graph):
    print(f"{m} -> {', '.join(sorted(graph[m])) or '-'}")
if circles:
    for c in circles:
        print("import circle among: " + ", ".join(c), file=sys.stderr)
    sys.exit(1)
print("no import circles among top-level modules")
