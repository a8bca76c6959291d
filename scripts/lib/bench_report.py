"""The summary of scripts/bench-server and scripts/bench-relay (single-node runs).

Reads the runs' JSON lines (sioload's, or scripts/bench/bench-client.rs's, which uses the same
field names) with `server`, `workload`, `run` and `load` added by the script, and prints every run,
then min / median / max per workload and server, then the ratios of the medians for each pair
asked for.

Usage: bench_report.py RESULTS WORKLOADS_JSON SERVERS PAIRS
  WORKLOADS_JSON  {"a": "1->10, 16 KiB, max", ...}, in display order
  SERVERS         server names in display order, comma-separated
  PAIRS           ratios to print, comma-separated OURS/THEIRS (pairs without runs are skipped)
"""

import json
import statistics
import sys

# (column, value of a run, format)
FIELDS = [
    ("frames/s", lambda r: r["delivered_fps"], "{:.0f}"),
    ("CPU s", lambda r: r["server_cpu_s"], "{:.2f}"),
    ("us/deliv", lambda r: 1e6 * r["server_cpu_s"] / max(r["frames_delivered"], 1), "{:.2f}"),
    ("p50 ms", lambda r: r["lat_p50_ms"], "{:.2f}"),
    ("p99 ms", lambda r: r["lat_p99_ms"], "{:.2f}"),
    ("RSS MiB", lambda r: r["server_rss_hwm_mb"], "{:.1f}"),
]


def main(path, workloads, servers, pairs):
    rows = [json.loads(line) for line in open(path)]
    desc = json.loads(workloads)
    order = servers.split(",")
    label = lambda w: f"{w} {desc[w]}"
    width = max(len(label(w)) for w in desc) + 2
    sw = max(len(s) for s in order) + 2

    print(f"\n{'workload':<{width}}{'server':<{sw}}{'run':>4}" + "".join(f"{n:>10}" for n, _, _ in FIELDS)
          + f"{'loss%':>7}{'reord':>7}{'gen%':>6}{'foreign%':>9}{'load1':>7}")
    for r in rows:
        foreign = r.get("foreign_cpu_pct")
        print(f"{label(r['workload']):<{width}}{r['server']:<{sw}}{r['run']:>4}"
              + "".join(f"{fmt.format(f(r)):>10}" for _, f, fmt in FIELDS)
              + f"{r['loss_pct']:>7.2f}{r['out_of_order']:>7}{r['gen_cpu_pct']:>6.0f}"
              + f"{'-' if foreign is None else format(foreign, '.0f'):>9}{r['load']:>7}")

    by = {}
    for r in rows:
        by.setdefault((r["workload"], r["server"]), []).append(r)
    print("\nmin / median / max per server (gen% = the load generator's own CPU, the highest of the runs)")
    print(f"{'workload':<{width}}{'server':<{sw}}{'runs':>5}" + "".join(f"{n:>22}" for n, _, _ in FIELDS) + f"{'gen%':>6}")
    for w in desc:
        for s in order:
            runs = by.get((w, s))
            if not runs:
                continue
            cells = ""
            for _, f, fmt in FIELDS:
                vals = sorted(f(r) for r in runs)
                cells += f"{'/'.join(fmt.format(v) for v in (vals[0], statistics.median(vals), vals[-1])):>22}"
            print(f"{label(w):<{width}}{s:<{sw}}{len(runs):>5}{cells}{max(r['gen_cpu_pct'] for r in runs):>6.0f}")

    med = lambda runs, f: statistics.median(f(r) for r in runs)
    for pair in pairs.split(","):
        ours, theirs = pair.split("/")
        found = [(w, by[(w, ours)], by[(w, theirs)]) for w in desc if (w, ours) in by and (w, theirs) in by]
        if found:
            print(f"\nratios of the medians, {ours} / {theirs}:")
        for w, o, t in found:
            print(f"  {w:>5}: " + ", ".join(f"{n} x{med(o, f) / med(t, f):.2f}" for n, f, _ in FIELDS if med(t, f)))


if __name__ == "__main__":
    main(*sys.argv[1:])
