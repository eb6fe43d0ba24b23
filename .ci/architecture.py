#!/usr/bin/env python3
"""Checks the architecture of statsfs-core (issue: the read plan and the tree module):

1. no import cycle between the crate's files: every `use crate::...`, `use super::...`
   and `crate::x::Y` path in code (comments skipped) is an edge from the file to the
   file that defines the name (re-exports of lib.rs and mod.rs files followed);
2. the tree module exposes nothing crate-wide: no `pub(crate)` item under src/tree/
   (its insides are `pub(super)`, so the compiler keeps every other file out);
3. the binary codec depends on nothing of the crate but `desc`.

Prints what it found; exits 1 on a violation."""
import os, re, sys

root = os.path.join(os.path.dirname(__file__), "..", "statsfs-core", "src")
files = {}
for d, _, fs in os.walk(root):
    for f in fs:
        if f.endswith(".rs"):
            p = os.path.relpath(os.path.join(d, f), root)
            mod = p[:-3].replace(os.sep, "::")
            mod = re.sub(r"(^|::)(mod|lib)$", "", mod)
            files[mod] = open(os.path.join(d, f)).read()

def code(text):
    out = []
    for line in text.split("\n"):
        s = line.strip()
        if s.startswith("//") or s.startswith("#[cfg(test)]"):
            if s.startswith("#[cfg(test)]"):
                break  # unit tests may reach anywhere
            continue
        out.append(re.sub(r"//.*", "", line))
    return "\n".join(out)

# Re-exports: (module, name) -> module that defines it.
reexport = {}
for mod, text in files.items():
    for m in re.finditer(r"pub use ([\w:]+)::\{([^}]*)\}|pub use ([\w:]+)::(\w+);", code(text)):
        base, names = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), m.group(4))
        for n in re.split(r"[,\s]+", names):
            if n:
                reexport[(mod, n)] = base

def resolve(mod, path):
    parts = path.split("::")
    if parts[0] == "crate":
        cur = []
    elif parts[0] == "super":
        cur = mod.split("::")[:-1] if mod else []
    elif parts[0] == "self":
        cur = mod.split("::") if mod else []
    else:
        cur = (mod.split("::") if mod else []) + [parts[0]] if "::".join((mod.split("::") if mod else []) + [parts[0]]) in files else None
        if cur is None:
            return None
    rest = parts[1:]
    for _ in range(8):
        while rest and "::".join(cur + [rest[0]]).strip(":") in files:
            cur = cur + [rest[0]]
            rest = rest[1:]
        m = "::".join(cur)
        if rest and (m, rest[0]) in reexport:
            target = reexport[(m, rest[0])]
            base = resolve(m, target + "::" + rest[0])
            return base
        return m
    return "::".join(cur)

edges = {m: set() for m in files}
for mod, text in files.items():
    body = code(text)
    paths = re.findall(r"\b((?:crate|super)(?:::\w+)+)", body)
    for m in re.finditer(r"use ((?:crate|super)(?:::\w+)*)::\{([^}]*)\}", body):
        for n in re.split(r"[,\s]+", m.group(2)):
            if n and n != "self":
                paths.append(m.group(1) + "::" + n.split("::")[0])
    for p in paths:
        t = resolve(mod, p)
        if t is not None and t != mod and t in files:
            edges[mod].add(t)

bad = 0
# 1. cycles
state, stack = {}, []
def dfs(u):
    global bad
    state[u] = 1
    stack.append(u)
    for v in sorted(edges[u]):
        if v.startswith(u + "::") or u.startswith(v + "::") and v in ("",):
            continue
        if state.get(v) == 1:
            print("import cycle:", " -> ".join(stack[stack.index(v):] + [v]) or "(crate root)")
            bad += 1
        elif v not in state:
            dfs(v)
    stack.pop()
    state[u] = 2
for m in sorted(files):
    if m not in state:
        dfs(m)
# 2. pub(crate) in the tree
for mod, text in files.items():
    if mod.startswith("tree") and "pub(crate)" in code(text):
        print(f"{mod}: pub(crate) item in the tree module (use pub(super))")
        bad += 1
# 3. the codec stands alone
for mod in files:
    if mod.startswith("binary"):
        for t in edges[mod]:
            if not (t.startswith("binary") or t == "desc"):
                print(f"{mod} depends on {t}: the codec may depend on desc only")
                bad += 1
n_edges = sum(len(v) for v in edges.values())
print(f"architecture: {len(files)} files, {n_edges} imports between them, {bad} violations")
sys.exit(1 if bad else 0)
