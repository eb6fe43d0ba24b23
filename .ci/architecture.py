#!/usr/bin/env python3
"""Checks the architecture of every statsfs crate (`docs/` and each crate's docs say why):

1. no import cycle between the files of any crate: every `use crate::...`,
   `use super::...` and `crate::x::Y` path in code (comments and unit tests skipped) is
   an edge from the file to the file that defines the name (re-exports of lib.rs and
   mod.rs files followed); a binary's main.rs is its own root;
2. the crates depend one way: the core on no other statsfs crate, the codec and the text
   formats on the core only, the products (mount, HTTP, region) on none of each other,
   the tool on no server;
3. statsfs-core's tree module exposes nothing crate-wide: no `pub(crate)` item under
   src/tree/ (its insides are `pub(super)`, so the compiler keeps every other file out);
4. the binary codec (statsfs-binary's header, descriptor, encode, decode, error, select)
   depends on nothing but the core's `desc`;
5. unsafe blocks only in a crate's `sys.rs`, the core's `tree/raw.rs`, or the dev-only
   testkit's counting allocator `alloc.rs`.

Prints what it found; exits 1 on a violation."""
import os, re, sys

top = os.path.join(os.path.dirname(__file__), "..")
crates = sorted(d for d in os.listdir(top)
                if d.startswith("statsfs-") and os.path.isdir(os.path.join(top, d, "src")))
bad = 0
total_files = total_edges = 0

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

def check_crate(crate):
    """Files, import edges and cycle count of one crate."""
    root = os.path.join(top, crate, "src")
    files = {}
    for d, _, fs in os.walk(root):
        for f in fs:
            if f.endswith(".rs") and not (f == "main.rs" and d == root):
                p = os.path.relpath(os.path.join(d, f), root)
                mod = p[:-3].replace(os.sep, "::")
                mod = re.sub(r"(^|::)(mod|lib)$", "", mod)
                files[mod] = open(os.path.join(d, f)).read()
    bad = 0
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

    # 1. cycles
    state, stack = {}, []
    def dfs(u):
        nonlocal bad
        state[u] = 1
        stack.append(u)
        for v in sorted(edges[u]):
            if v.startswith(u + "::") or u.startswith(v + "::") and v in ("",):
                continue
            if state.get(v) == 1:
                print(f"{crate}: import cycle:", " -> ".join(stack[stack.index(v):] + [v]) or "(crate root)")
                bad += 1
            elif v not in state:
                dfs(v)
        stack.pop()
        state[u] = 2
    for m in sorted(files):
        if m not in state:
            dfs(m)
    return files, edges, bad

for crate in crates:
    files, edges, n = check_crate(crate)
    bad += n
    total_files += len(files)
    total_edges += sum(len(v) for v in edges.values())
    if crate == "statsfs-core":
        # 3. pub(crate) in the tree
        for mod, text in files.items():
            if mod.startswith("tree") and "pub(crate)" in code(text):
                print(f"{crate}: {mod}: pub(crate) item in the tree module (use pub(super))")
                bad += 1
    if crate == "statsfs-binary":
        # 4. the codec stands alone
        codec = ("header", "descriptor", "encode", "decode", "error", "select")
        for mod in codec:
            for t in edges.get(mod, ()):
                if t not in codec and t != "":
                    print(f"{crate}: {mod} depends on {t}: the codec may depend on desc only")
                    bad += 1
            for m in set(re.findall(r"statsfs_core::(\w+)", code(files.get(mod, "")))):
                if m != "desc":
                    print(f"{crate}: {mod} uses statsfs_core::{m}: the codec may depend on desc only")
                    bad += 1
    # 5. unsafe only where its invariant lives
    for mod, text in files.items():
        designated = mod in ("sys", "tree::raw") or (crate == "statsfs-testkit" and mod == "alloc")
        if re.search(r"\bunsafe\s*\{", code(text)) and not designated:
            print(f"{crate}: {mod}: an unsafe block outside sys.rs / tree/raw.rs")
            bad += 1

# 2. crates depend one way
def deps(crate):
    text = open(os.path.join(top, crate, "Cargo.toml")).read()
    m = re.search(r"\n\[dependencies\]\n(.*?)(\n\[|$)", text, re.S)
    return set(re.findall(r"^(statsfs-[\w-]+)", m.group(1) if m else "", re.M))
allowed = {
    "statsfs-derive": {"statsfs-core"},  # the rules, in one place
    "statsfs-testkit": set(),
    "statsfs-core": set(),
    "statsfs-binary": {"statsfs-core"},
    "statsfs-text": {"statsfs-core"},
    "statsfs-vfs": {"statsfs-core", "statsfs-binary", "statsfs-text"},
    "statsfs-http": {"statsfs-core", "statsfs-text"},
    "statsfs-region": {"statsfs-core", "statsfs-binary"},
    "statsfs-metrics": {"statsfs-core"},  # a source of values, like a struct: no view
    "statsfs-cli": {"statsfs-core", "statsfs-binary", "statsfs-text", "statsfs-region"},
}
for crate in crates:
    extra = deps(crate) - allowed.get(crate, set())
    if crate not in allowed:
        print(f"{crate}: a new crate; say in .ci/architecture.py what it may depend on")
        bad += 1
    for d in sorted(extra):
        print(f"{crate} depends on {d}: not allowed (data flows one way; see .ci/architecture.py)")
        bad += 1

print(f"architecture: {len(crates)} crates, {total_files} files, {total_edges} imports between them, {bad} violations")
sys.exit(1 if bad else 0)
