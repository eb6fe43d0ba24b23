#!/usr/bin/env python3
"""Prints the medians of the last `cargo bench` run (target/criterion/*/*/new) and the
ratios BENCHMARKS.md quotes, each ratio between two cases of the same run."""
import json, pathlib, sys

root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "target/criterion")
med = {}
for est in sorted(root.glob("*/*/new/estimates.json")):
    bench = json.loads((est.parent / "benchmark.json").read_text())
    e = json.loads(est.read_text())
    per = bench.get("throughput") or {}
    n = per.get("Elements", 1)
    med[(est.parts[-4], est.parts[-3])] = (e["median"]["point_estimate"], n)

print(f"| group | case | median per iteration | per element |")
print("|---|---|---:|---:|")
for (g, c), (ns, n) in med.items():
    print(f"| {g} | {c} | {ns:,.1f} ns | {ns / n:.2f} ns |")

def ratio(g, a, b):
    if (g, a) in med and (g, b) in med:
        print(f"{g}: {a} / {b} = {med[(g, a)][0] / med[(g, b)][0]:.2f}")

print()
ratio("owner_inc", "statsfs_inc_local", "plain_u64_add")
for c in ["prometheus_IntCounter", "prometheus_client_Counter", "metrics_Counter", "measured_Counter"]:
    ratio("shared_inc", "statsfs_inc", c)
ratio("two_threads_inc", "one_shared_fetch_add", "statsfs_ShardedCounter_inc")
for h in ["hist_log_record", "hist_linear_record"]:
    kind = "Log" if "log" in h else "Linear"
    for c in ["prometheus_client_Histogram32_observe", "measured_Histogram32_observe"]:
        ratio(h, c, f"statsfs_{kind}Histogram32_record")
        ratio(h, c, f"statsfs_{kind}Histogram32_record_local")
for c in ["statsfs_get_sum", "statsfs_get_avg"]:
    ratio("aggregate_10k", c, "vec_u64_sum")
    ratio("aggregate_10k", c, "vec_arc_struct_field_sum")
