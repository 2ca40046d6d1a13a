#!/usr/bin/python3
"""Tabulate the runs of bench/serve.sh.

Reads RUNS (JSON lines written by the driver: server, kind "single" or
"batch", rep, batch_rows, result = the JSON file post.lua's done() wrote) and
prints medians over repeats: a single-row table (req/s, p50, p99, errors), the
ratios mlship/empty and mlship/flask with the issue's targets, and a batch
table in rows/s.

Exit status: 0; 1 when a result cannot be read or any run had errors (non-2xx
answers or socket errors: its numbers are not a measurement of the server
answering); with --strict also 1 when a target is missed.
"""

import argparse
import json
import statistics
import sys

ORDER = ("mlship", "empty", "flask")
LABELS = {
    "mlship": "mlship-serve",
    "empty": "empty net/http",
    "flask": "flask+gunicorn",
}
# (kind, peer) -> bound on mlship's req/s (or rows/s) over the peer's, from the issue.
TARGETS = {
    ("single", "empty"): 0.8,
    ("single", "flask"): 10.0,
}
ERROR_KINDS = ("connect", "read", "write", "timeout", "status")


def render(rows, header, align):
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    out = []
    for r in [header] + rows:
        cells = [str(c).ljust(w) if a == "<" else str(c).rjust(w) for c, w, a in zip(r, widths, align)]
        out.append("  ".join(cells).rstrip())
    out.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(out)


def ms(us):
    return f"{us / 1000:.2f}"


def load(path):
    by_key, bad = {}, []
    with open(path) as f:
        for line in f:
            if not line.strip():
                continue
            run = json.loads(line)
            try:
                with open(run["result"]) as rf:
                    res = json.load(rf)
                if res["duration_us"] <= 0:
                    raise ValueError("duration is 0")
            except (OSError, ValueError, KeyError) as e:
                bad.append(f"{run['server']} {run['kind']} run {run['rep']}: cannot read {run['result']}: {e}")
                continue
            res["req_s"] = res["requests"] / (res["duration_us"] / 1e6)
            res["error_total"] = sum(res["errors"].get(k, 0) for k in ERROR_KINDS)
            res["batch_rows"] = run.get("batch_rows", 1)
            by_key.setdefault((run["kind"], run["server"]), []).append(res)
    return by_key, bad


def summarise(runs):
    errs = {k: sum(r["errors"].get(k, 0) for r in runs) for k in ERROR_KINDS}
    return {
        "req_s": statistics.median(r["req_s"] for r in runs),
        "rows_s": statistics.median(r["req_s"] * r["batch_rows"] for r in runs),
        "p50": statistics.median(r["latency_us"]["p50"] for r in runs),
        "p99": statistics.median(r["latency_us"]["p99"] for r in runs),
        "requests": sum(r["requests"] for r in runs),
        "errors": errs,
        "error_total": sum(errs.values()),
        "n": len(runs),
    }


def error_cell(s):
    if s["error_total"] == 0:
        return "0"
    # wrk's socket error names; its "status" counts answers with an HTTP status > 399.
    parts = [f"{'4xx/5xx' if k == 'status' else k} {v}" for k, v in s["errors"].items() if v]
    return f"{s['error_total']} ! ({', '.join(parts)})"


def ratio_rows(kind, s, metric, unit, missed):
    rows = []
    if "mlship" not in s:
        return rows
    for peer in ("empty", "flask"):
        if peer not in s or s[peer][metric] <= 0:
            continue
        r = s["mlship"][metric] / s[peer][metric]
        bound = TARGETS.get((kind, peer))
        verdict = ""
        if bound is not None:
            ok = r >= bound
            verdict = f">= {bound:g}x: {'met' if ok else 'MISSED'}"
            if not ok:
                missed.append(f"{kind} mlship/{peer} {unit} {r:.3f}x, target >= {bound:g}x")
        # Three decimals below 10x, so that a ratio printed as the bound is never "MISSED".
        rows.append([f"mlship/{peer}", unit, f"{r:.3f}x" if r < 10 else f"{r:.2f}x", verdict])
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("runs")
    ap.add_argument("--strict", action="store_true")
    args = ap.parse_args()

    by_key, bad = load(args.runs)
    for b in bad:
        print(f"table.py: {b}", file=sys.stderr)

    missed, flagged = [], []
    for kind in ("single", "batch"):
        s = {srv: summarise(by_key[(kind, srv)]) for srv in ORDER if (kind, srv) in by_key}
        if not s:
            continue
        n = max(v["n"] for v in s.values())
        for srv, v in s.items():
            if v["error_total"]:
                flagged.append(f"{LABELS[srv]} {kind}: {error_cell(v)}")
        if kind == "single":
            print(f"single row, POST /predict {{\"input\": [13 numbers]}}  (median of {n} run(s))")
            rows = [[LABELS[srv], f"{v['req_s']:,.0f}", ms(v["p50"]), ms(v["p99"]), f"{v['requests']:,}",
                     error_cell(v)] for srv, v in s.items()]
            print(render(rows, ["server", "req/s", "p50 ms", "p99 ms", "requests", "errors"], "<>>>><"))
            print()
            rr = ratio_rows(kind, s, "req_s", "req/s", missed)
        else:
            rows_per = sorted({r["batch_rows"] for srv in s for r in by_key[(kind, srv)]})
            print(f"batch, POST /predict {{\"inputs\": [{'/'.join(map(str, rows_per))} rows]}}  (median of {n} run(s))")
            rows = [[LABELS[srv], f"{v['rows_s']:,.0f}", f"{v['req_s']:,.0f}", ms(v["p50"]), ms(v["p99"]),
                     f"{v['requests']:,}", error_cell(v)] for srv, v in s.items()]
            print(render(rows, ["server", "rows/s", "req/s", "p50 ms", "p99 ms", "requests", "errors"],
                         "<>>>>><"))
            print()
            rr = ratio_rows(kind, s, "rows_s", "rows/s", missed)
        if rr:
            print(render(rr, ["ratio", "of", "value", "target"], "<<><"))
            print()

    if missed:
        print("targets missed: " + "; ".join(missed))
    if flagged:
        print("RUNS WITH ERRORS (their numbers are not valid): " + "; ".join(flagged))
    if bad or flagged:
        return 1
    if missed and args.strict:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
