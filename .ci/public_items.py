#!/usr/bin/env python3
"""Counts a crate's public API items from rustdoc's JSON output (nightly rustdoc).

    python3 .ci/public_items.py statsfs-core [more crates...]

An item counts when a user can name it: walked from the crate root through public
modules, re-exports of the crate's own items, the fields and variants of public types,
the items of public traits and the public items of inherent impls. Items marked
`#[doc(hidden)]` and trait implementations are not counted. Prints one line per crate
with the count by kind and the total."""
import collections, json, os, subprocess, sys

def count(pkg):
    env = dict(os.environ, RUSTDOCFLAGS="-Z unstable-options --output-format json")
    target = os.environ.get("CARGO_TARGET_DIR", "target")
    subprocess.run(["cargo", "+nightly", "doc", "--no-deps", "-q", "-p", pkg, "--all-features"],
                   check=True, env=env)
    doc = json.load(open(os.path.join(target, "doc", pkg.replace("-", "_") + ".json")))
    index = doc["index"]
    seen, kinds = set(), collections.Counter()

    def hidden(item):
        return any("hidden" in str(a) and "doc" in str(a) for a in item.get("attrs", []))

    def fields(inner):
        """The field ids of a struct (plain or tuple) or union; none for the rest."""
        kind = inner.get("kind")
        if not isinstance(kind, dict):
            return []
        if len(kind) != 1:
            return []
        (body,) = kind.values()
        if isinstance(body, dict):
            return [f for f in body.get("fields", []) if f is not None]
        if isinstance(body, list):
            return [f for f in body if f is not None]
        return []

    def visit(iid):
        iid = str(iid)
        item = index.get(iid)
        if item is None or iid in seen or item.get("crate_id") != 0 or hidden(item):
            return
        seen.add(iid)
        (kind, inner), = item["inner"].items()
        if kind == "use":
            seen.discard(iid)
            if inner.get("id") is not None:
                visit(inner["id"])
            return
        kinds[kind] += 1
        if kind == "module":
            for c in inner["items"]:
                child = index.get(str(c))
                if child and (child["visibility"] == "public" or "use" in child["inner"]):
                    visit(c)
        elif kind in ("struct", "enum", "union", "trait"):
            for f in fields(inner):
                if index.get(str(f), {}).get("visibility") == "public":
                    visit(f)
            for i in inner.get("variants", []) + inner.get("items", []):
                visit(i)
            for imp in inner.get("impls", []):
                im = index.get(str(imp))
                if im and im["inner"]["impl"]["trait"] is None:
                    for i in im["inner"]["impl"]["items"]:
                        if index.get(str(i), {}).get("visibility") == "public":
                            visit(i)

    visit(doc["root"])
    total = sum(kinds.values())
    print(f"{pkg}: {total} public items (" +
          ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())) + ")")
    return total

if __name__ == "__main__":
    for p in sys.argv[1:] or ["statsfs-core"]:
        count(p)
