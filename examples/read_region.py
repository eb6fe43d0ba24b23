#!/usr/bin/env python3
"""Read a statsfs shared region: every published stat, straight from memory.

Written from docs/REGION.md alone (and docs/BINARY.md for the descriptor blob), not
from the Rust code, as a check that the page is the whole interface. Python 3.11,
standard library only. Run:

    python3 examples/read_region.py /run/statsfs-kvm.region            # one line a stat
    python3 examples/read_region.py --json /run/statsfs-kvm.region     # one JSON object
    python3 examples/read_region.py --watch 1 /run/statsfs-kvm.region  # what changed

Exit status: 0; 1 if the file cannot be opened; 2 if the region is bad or the writer
kept it busy for 2 s (one line on stderr).
"""
import argparse, json, mmap, os, stat, struct, sys, time

HEADER = struct.Struct("<8sIIQQQQQQ")  # magic version flags generation size, layout, data (off len)
ENTRY = struct.Struct("<IBBHHHHHII")   # length kind hidden p n l s reserved d reserved
LOC = struct.Struct("<QBBBBHH")        # offset width signed aggregation reserved words reserved
KVM_HEADER = struct.Struct("<6I")      # flags name_size num_desc id_offset desc_offset data_offset
KVM_DESC = struct.Struct("<IhHII")     # flags exponent size offset bucket_size, then the name
M64, I64_MAX, I64_MIN = (1 << 64) - 1, (1 << 63) - 1, -(1 << 63)
SUM, MIN, MAX, AVG, COUNT_ZERO, NONE = range(6)
# On a little-endian machine CPython's struct unpacks these '<' formats with a fixed-size
# memcpy, which for a naturally aligned word of 1, 2, 4 or 8 bytes compiles to one load on
# x86: one atomic load (and an x86 load is an acquire load). Python does not promise it;
# it holds for CPython on x86-64, which is what statsfs builds for.
FORMATS = {(1, 0): "<B", (2, 0): "<H", (4, 0): "<I", (8, 0): "<Q",
           (1, 1): "<b", (2, 1): "<h", (4, 1): "<i", (8, 1): "<q"}


class BadRegion(Exception):
    pass


def need(ok, message):
    if not ok:
        raise BadRegion("bad region: " + message)


def generation(mm):
    return struct.unpack_from("<Q", mm, 16)[0]  # one aligned 8-byte load (see FORMATS)


def utf8(raw, what):
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRegion(f"bad region: {what} is not UTF-8") from None


def cstr(blob, at, size, what):
    raw = blob[at:at + size]
    need(b"\0" in raw, f"{what} has no NUL within name_size bytes")
    return utf8(raw[:raw.index(b"\0")], what)


def parse_labels(raw, where):
    labels, o = {}, 0
    while o < len(raw):
        pair = []
        for _ in "kv":
            need(o + 2 <= len(raw), f"{where}: label block truncated")
            (n,), o = struct.unpack_from("<H", raw, o), o + 2
            need(o + n <= len(raw), f"{where}: label runs past the label block")
            pair.append(utf8(raw[o:o + n], f"{where}: label"))
            o += n
        need(pair[0] not in labels, f"{where}: label {pair[0]!r} twice")
        labels[pair[0]] = pair[1]
    return labels


def parse_descriptors(blob, stats, where):
    """(name, kind, size) of each descriptor of a blob in the kernel's layout (BINARY.md)."""
    need(len(blob) >= 24, f"{where}: descriptor blob shorter than its header")
    flags, name_size, num_desc, id_off, desc_off, data_off = KVM_HEADER.unpack_from(blob)
    need(flags == 0, f"{where}: descriptor header flags {flags:#x}")
    need(0 < name_size <= 4096 and name_size % 8 == 0, f"{where}: name_size {name_size}")
    need(num_desc == stats, f"{where}: {num_desc} descriptors for {stats} stats")
    need(all(o >= 24 and o % 8 == 0 for o in (id_off, desc_off, data_off)),
         f"{where}: descriptor blob offsets {id_off} {desc_off} {data_off}")
    desc_end = desc_off + num_desc * (16 + name_size)
    need(id_off + name_size <= desc_off or desc_end <= id_off, f"{where}: id overlaps descriptors")
    need(max(id_off + name_size, desc_end) <= len(blob), f"{where}: descriptor blob truncated")
    need(data_off == desc_end, f"{where}: data_offset {data_off} is not just past the descriptors")
    cstr(blob, id_off, name_size, f"{where}: id string")
    out = []
    next_word = 0
    for i in range(num_desc):
        at = desc_off + i * (16 + name_size)
        flags, _exponent, size, offset, _bucket_size = KVM_DESC.unpack_from(blob, at)
        # In a region the data offsets are consecutive from 0, in descriptor order.
        need(offset == 8 * next_word, f"{where}: descriptor {i} at data offset {offset}, not {8 * next_word}")
        next_word += size
        name = cstr(blob, at + 16, name_size, f"{where}: descriptor {i} name")
        kind, unit, base = flags & 15, flags >> 4 & 15, flags >> 8 & 15
        need(name and flags >> 12 == 0 and kind <= 4 and unit <= 4 and base <= 1 and size >= 1,
             f"{where}: descriptor {i} {name!r}: empty name, flags {flags:#x} or size {size}")
        out.append((name, kind, size))
    return out


def parse_entry(mm, pos, end, data_off, data_end, i):
    where = f"layout entry {i}"
    need(pos + ENTRY.size <= end, f"{where}: runs past the layout block")
    length, kind, hidden, p, n, l, s, r1, d, r2 = ENTRY.unpack_from(mm, pos)
    need(length % 8 == 0 and ENTRY.size <= length <= end - pos, f"{where}: length {length}")
    need(kind in (0, 1) and hidden in (0, 1) and r1 == r2 == 0, f"{where}: kind, hidden or reserved")
    e = mm[pos:pos + length]  # a private copy: what is checked is what is used
    labels_end = 24 + p + n + l
    blob_at = (labels_end + 7) // 8 * 8
    locs = (blob_at + d + 7) // 8 * 8
    need(locs + 16 * s == length, f"{where}: p {p} n {n} l {l} d {d} s {s} do not fill {length} bytes")
    path = utf8(e[24:24 + p], f"{where}: path")
    schema = utf8(e[24 + p:24 + p + n], f"{where}: schema name")
    where = f"layout entry {i} ({path})"
    labels, stats = parse_labels(e[24 + p + n:labels_end], where), []
    for j, (name, dkind, size) in enumerate(parse_descriptors(e[blob_at:blob_at + d], s, where)):
        off, width, signed, agg, r1, words, r2 = LOC.unpack_from(e, locs + 16 * j)
        w = f"{where}: stat {name!r}"
        need(width in (1, 2, 4, 8) and signed in (0, 1) and r1 == r2 == 0,
             f"{w}: width {width}, signed or reserved")
        need(agg < NONE or agg == NONE and kind == 0, f"{w}: aggregation {agg}")
        need(words == size >= 1 and (words == 1 or width == 8 and dkind in (3, 4)),
             f"{w}: {words} words of width {width} (descriptor: kind {dkind}, size {size})")
        if kind == 0:
            need(off % width == 0, f"{w}: offset {off} not aligned to its width {width}")
            need(data_off <= off and off + words * width <= data_end,
                 f"{w}: offset {off} outside the data area")
        else:
            need(off == 0, f"{w}: an aggregate at offset {off}")
        stats.append(dict(name=name, hist=dkind in (3, 4), off=off, width=width, signed=signed,
                          agg=agg, words=words, fmt=FORMATS[width, signed]))
    return length, dict(path=path, schema=schema, kind=kind, hidden=bool(hidden),
                        labels=labels, stats=stats)


def parse_layout(mm):
    magic, version, flags, _, size, loff, llen, doff, dlen = HEADER.unpack_from(mm)
    need(magic == b"statsfsR", "bad magic, not a statsfs region")
    need(version == 1, f"unsupported version {version}")
    need(size == len(mm), f"header says {size} bytes, the file has {len(mm)}")
    need(loff % 8 == 0, f"layout block offset {loff} not 8-byte aligned")
    need(doff >= 4096 and doff + dlen <= size, f"data area {doff}+{dlen} outside the file")
    need(loff >= 4096 and llen >= 8 and loff + llen <= doff,
         f"layout block {loff}+{llen} is not between the header page and the data area")
    count, reserved = struct.unpack_from("<II", mm, loff)
    need(reserved == 0, "layout block reserved field is not 0")
    pos, end, sources = loff + 8, loff + llen, []
    for i in range(count):
        length, src = parse_entry(mm, pos, end, doff, doff + dlen, i)
        sources.append(src)
        pos += length
    need(pos == end, f"layout block is {llen} bytes, its entries end at {pos - loff}")
    for agg in (a for a in sources if a["kind"] == 1):  # members: same schema, own path or below
        below = [s for s in sources if s["kind"] == 0 and s["schema"] == agg["schema"]
                 and (s["path"] == agg["path"] or s["path"].startswith(agg["path"] + "/"))]
        for st in agg["stats"]:
            # A member's stat of the same name and size; one of another size is not folded.
            st["members"] = [x for m in below for x in m["stats"]
                             if x["name"] == st["name"] and x["words"] == st["words"]]
    if flags & 1:
        print("warning: the region overflowed: its layout lists no sources (see the writer's log)",
              file=sys.stderr)
    return sources


def signed64(u):
    return u - (1 << 64) if u >> 63 else u


def fold(st, values):
    """One aggregate stat over its members' words (u64 each), by REGION.md's table."""
    how, neg, out = st["agg"], st["signed"], []
    for w in range(st["words"]):
        xs = [signed64(v[w]) if neg else v[w] for v in values]
        if how == SUM: r = sum(xs)
        elif how == MIN: r = min(xs, default=I64_MAX if neg else M64)
        elif how == MAX: r = max(xs, default=I64_MIN if neg else 0)
        elif how == AVG: r = 0 if not xs else (-1 if sum(xs) < 0 else 1) * (abs(sum(xs)) // len(xs))
        else: r = xs.count(0)  # COUNT_ZERO; NONE never appears in an aggregates entry
        out.append(r & M64)
    return out


def read_values(mm, sources):
    """Every stat's words as u64 (two's complement), by source; aggregates folded."""
    got = {}
    for st in (st for src in sources if src["kind"] == 0 for st in src["stats"]):
        got[id(st)] = [struct.unpack_from(st["fmt"], mm, st["off"] + i * st["width"])[0] & M64
                       for i in range(st["words"])]
    for st in (st for src in sources if src["kind"] == 1 for st in src["stats"]):
        got[id(st)] = fold(st, [got[id(m)] for m in st["members"]])
    return [[got[id(st)] for st in src["stats"]] for src in sources]


def printable(text):
    """text with its control characters (C0, DEL, C1) escaped: names come from the
    region's writer, and one of those would reach the terminal as a command."""
    return "".join(c if not (ord(c) < 0x20 or 0x7f <= ord(c) <= 0x9f)
                   else (f"\\x{ord(c):02x}" if ord(c) <= 0x7f else f"\\u{{{ord(c):x}}}")
                   for c in text)


class Region:
    def __init__(self, path):
        # Without blocking (a FIFO at the path is not waited on), a regular file only.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            st = os.fstat(fd)
            need(stat.S_ISREG(st.st_mode), "not a regular file, so not a region")
            need(st.st_size >= 64, "file shorter than the 64-byte header")
            self.mm = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
            self.size = st.st_size
            self.fd, fd = fd, None
        finally:
            if fd is not None:
                os.close(fd)
        self.gen = self.sources = None

    def refresh(self, patience=2.0):
        """(generation, sources, values), read by REGION.md#reading."""
        # A file cut short under the mapping would kill this process (SIGBUS) at the
        # first load past its end. This check narrows the window; only a reader that
        # handles SIGBUS closes it (REGION.md#what-a-region-survives).
        need(os.fstat(self.fd).st_size == self.size, "the file was cut short under the reader")
        deadline = time.monotonic() + patience
        while True:
            g = generation(self.mm)
            if g % 2 == 0:
                values = None
                try:
                    if g != self.gen:
                        self.gen, self.sources = None, parse_layout(self.mm)
                        self.gen = g
                    values = read_values(self.mm, self.sources)
                except BadRegion:
                    if generation(self.mm) == g:
                        raise  # it failed a check under a stable generation: really bad
                if values is not None and generation(self.mm) == g:
                    return g, self.sources, values
            if time.monotonic() > deadline:
                raise BadRegion(f"busy region: gave up after {patience:g} s (generation {g})")
            time.sleep(0.001)


def show(st, words):
    """(JSON value, text) of one stat."""
    v = [signed64(x) if st["signed"] else x for x in words]
    return (v, f"{sum(v)} [{' '.join(map(str, v))}]") if st["hist"] else (v[0], str(v[0]))


def lines(sources, values):
    for src, vals in zip(sources, values):
        for st, words in zip(src["stats"], vals):
            yield "/".join(filter(None, (src["path"], st["name"]))), show(st, words)[1]


def as_json(g, sources, values):
    return json.dumps({"generation": g, "sources": [
        {"path": s["path"], "schema": s["schema"], "kind": ("values", "aggregates")[s["kind"]],
         "hidden": s["hidden"], "labels": s["labels"],
         "stats": {st["name"]: show(st, w)[0] for st, w in zip(s["stats"], vals)}}
        for s, vals in zip(sources, values)]})


def main():
    ap = argparse.ArgumentParser(description="Print the stats of a statsfs shared region.")
    ap.add_argument("region", help="the region file, e.g. /run/statsfs-kvm.region")
    ap.add_argument("--json", action="store_true", help="print one JSON object a refresh")
    ap.add_argument("--watch", type=float, metavar="SECONDS",
                    help="refresh every SECONDS, print what changed")
    ap.add_argument("--count", type=int, metavar="N",
                    help="stop after N refreshes (default 1; no end with --watch)")
    args = ap.parse_args()
    count = args.count if args.count is not None else None if args.watch is not None else 1
    shown, done = None, 0
    try:
        region = Region(args.region)
        while count is None or done < count:
            if done:
                time.sleep(args.watch or 0)
            g, sources, values = region.refresh()
            now = list(lines(sources, values))
            if args.json:
                if now != shown:
                    print(as_json(g, sources, values))
            else:
                before, after = dict(shown or ()), dict(now)
                for k, v in now:
                    if shown is None or before.get(k) != v:
                        print(printable(k), v)
                for k in dict.fromkeys(k for k, _ in shown or () if k not in after):
                    print(printable(k), "-")  # no longer published
            sys.stdout.flush()
            shown, done = now, done + 1
    except OSError as e:
        if isinstance(e, BrokenPipeError):  # e.g. piped into head: stop quietly
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 0
        print(f"{ap.prog}: {printable(args.region)}: {printable(str(e.strerror or e))}",
              file=sys.stderr)
        return 1
    except BadRegion as e:
        print(f"{ap.prog}: {printable(args.region)}: {printable(str(e))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
