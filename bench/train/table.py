#!/usr/bin/python3
"""Tabulate the runs of bench/train.sh.

Reads RUNS (JSON lines written by the driver: impl, batch, rep, e2e_seconds,
stdout path), parses each run's JSON result and prints one table per batch
size with medians over repeats, then the mlship/peer ratios and the targets.

Exit status: 0, or 1 when a run's output cannot be read; with --strict also 1
when a target is missed.
"""

import argparse
import json
import statistics
import sys

IMPLS = ("mlship", "mlship-f32", "sklearn", "torch")
MINE = ("mlship", "mlship-f32")  # mlship-f32: mlship train --dtype float32
# (data set, batch, metric, peer) -> (comparison, bound), from the issues; printed
# next to the ratios. A throughput target also wants the test accuracy within
# ACC_POINTS percentage points of the peer's.
TARGETS = {
    ("heart", 32, "throughput", "sklearn"): (">=", 1.0),
    ("heart", 32, "end_to_end", "sklearn"): ("<=", 0.3),
    ("synth-100k", 32, "throughput", "sklearn"): (">=", 1.5),
    ("synth-100k", 256, "throughput", "torch"): (">=", 1.0),
}
ACC_POINTS = 1.0


def parse_result(path):
    with open(path) as f:
        text = f.read()
    try:
        return json.loads(text)
    except ValueError:
        pass
    for line in reversed(text.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                continue
    raise ValueError(f"no JSON object on stdout ({path})")


def summarise(runs):
    """Medians over the repeats of one (batch, impl)."""
    sps = [r["train_rows"] * r["epochs_run"] / r["train_seconds"] for r in runs]
    epochs = sorted({r["epochs_run"] for r in runs})
    accs = sorted({round(r["metrics"]["accuracy"], 4) for r in runs})
    return {
        "samples_per_second": statistics.median(sps),
        "train_seconds": statistics.median(r["train_seconds"] for r in runs),
        "e2e_seconds": statistics.median(r["e2e_seconds"] for r in runs),
        "epochs": epochs,
        "best_epoch": sorted({r.get("best_epoch") for r in runs if r.get("best_epoch") is not None}),
        "accuracy": accs,
        "train_rows": runs[0]["train_rows"],
        "n": len(runs),
    }


def span(values, fmt):
    if not values:
        return "-"
    if len(values) == 1:
        return fmt.format(values[0])
    return fmt.format(values[0]) + ".." + fmt.format(values[-1])


def render(rows, header, align):
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    out = []
    for r in [header] + rows:
        cells = [str(c).ljust(w) if a == "<" else str(c).rjust(w) for c, w, a in zip(r, widths, align)]
        out.append("  ".join(cells).rstrip())
    out.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("runs")
    ap.add_argument("--strict", action="store_true")
    args = ap.parse_args()

    by_key = {}
    failed = False
    with open(args.runs) as f:
        for line in f:
            if not line.strip():
                continue
            run = json.loads(line)
            try:
                res = parse_result(run["stdout"])
                for k in ("train_rows", "epochs_run", "train_seconds"):
                    if not isinstance(res.get(k), (int, float)) or res[k] <= 0:
                        raise ValueError(f"{run['impl']}: field {k!r} missing or not positive in {run['stdout']}")
                res["metrics"]["accuracy"]
            except (OSError, ValueError, KeyError, TypeError) as e:
                print(f"table.py: {run['impl']} batch {run['batch']} run {run['rep']}: {e}", file=sys.stderr)
                failed = True
                continue
            res["e2e_seconds"] = run["e2e_seconds"]
            by_key.setdefault((run.get("set", "heart"), run["batch"], run["impl"]), []).append(res)
    if failed:
        return 1

    missed = []
    sets = []
    for ds, _, _ in by_key:
        if ds not in sets:
            sets.append(ds)
    for ds, batch in [(d, b) for d in sets for b in sorted({b for d2, b, _ in by_key if d2 == d})]:
        s = {impl: summarise(by_key[(ds, batch, impl)]) for impl in IMPLS if (ds, batch, impl) in by_key}
        rows = []
        for impl, v in s.items():
            rows.append([
                impl,
                f"{v['samples_per_second']:,.0f}",
                f"{v['train_seconds']:.3f}",
                f"{v['e2e_seconds']:.3f}",
                span(v["epochs"], "{}"),
                span(v["best_epoch"], "{}"),
                span(v["accuracy"], "{:.4f}"),
            ])
        n = max(v["n"] for v in s.values())
        rows_train = sorted({v["train_rows"] for v in s.values()})
        print(f"{ds}: batch size {batch}  (train rows {span(rows_train, '{}')}; median of {n} run(s) each)")
        print(render(rows,
                     ["impl", "samples/s", "train s", "end-to-end s", "epochs", "best", "test acc"],
                     "<>>>>>>"))
        print()

        rrows = []
        # A target counts as missed only when every mlship variant run misses it.
        verdicts = {}
        for mine in MINE:
            if mine not in s:
                continue
            m = s[mine]
            for peer in ("sklearn", "torch"):
                if peer not in s:
                    continue
                p = s[peer]
                for metric, ratio, better in (
                    ("throughput", m["samples_per_second"] / p["samples_per_second"], "higher is better"),
                    ("end_to_end", m["e2e_seconds"] / p["e2e_seconds"], "lower is better"),
                ):
                    target = TARGETS.get((ds, batch, metric, peer))
                    if target:
                        op, bound = target
                        ok = ratio >= bound if op == ">=" else ratio <= bound
                        verdict = f"target {op} {bound:.1f}x: {'met' if ok else 'MISSED'}"
                        why = [] if ok else [f"{ds} batch {batch} {metric} {mine}/{peer} {ratio:.2f}x, target {op} {bound:.1f}x"]
                        if metric == "throughput" and ds != "heart":
                            gap = 100 * (m["accuracy"][0] - p["accuracy"][0])
                            acc_ok = abs(gap) <= ACC_POINTS or gap > 0
                            verdict += f"; accuracy {gap:+.2f} points: {'met' if acc_ok else 'MISSED'}"
                            if not acc_ok:
                                why.append(f"{ds} batch {batch} accuracy {mine}-{peer} {gap:+.2f} points, target within {ACC_POINTS:.0f}")
                        verdicts.setdefault((metric, peer), []).append(why)
                    else:
                        verdict = ""
                    label = "samples/s" if metric == "throughput" else "end-to-end time"
                    rrows.append([f"{mine}/{peer}", label, f"{ratio:.2f}x", better, verdict])
        for whys in verdicts.values():
            if all(whys):
                missed.extend(w for why in whys for w in why)
        if not rrows:
            continue
        print(render(rrows, ["ratio", "of", "value", "direction", "target"], "<<><<"))
        print()

    if missed:
        print("targets missed: " + "; ".join(missed))
        if args.strict:
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
