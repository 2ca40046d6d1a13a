#!/usr/bin/python3
"""Tabulate the runs of bench/image.sh.

Reads RUNS (JSON lines: impl, rep, seconds, result = mlship's --json output,
manifest = `crane manifest` of the pushed image) and DELTA (JSON lines: impl,
counter_a/counter_b = the counting proxy's counters after pushing image A and
then image B, manifest_a/manifest_b). Prints build+push times (medians), the
mlship/crane ratio, the image sizes and the bytes sent for a model-only change,
with the targets.

Exit status: 0, or 1 when an input cannot be read; with --strict also 1 when a
target is missed.
"""

import argparse
import json
import statistics
import sys

IMPLS = ("mlship", "crane")
SIZE_TARGET = 10_000_000  # bytes, compressed image of one platform (10 MB)


def load(path):
    with open(path) as f:
        return json.load(f)


def sizes(manifest_path):
    """Layer sizes, config and manifest sizes, total: the bytes of one platform's image."""
    with open(manifest_path, "rb") as f:
        raw = f.read()
    m = json.loads(raw)
    if "layers" not in m:
        raise ValueError(f"{manifest_path}: not an image manifest (an index?)")
    layers = [l["size"] for l in m["layers"]]
    return {
        "layers": layers,
        "config": m["config"]["size"],
        "manifest": len(raw),
        "total": sum(layers) + m["config"]["size"] + len(raw),
        "digests": [l["digest"] for l in m["layers"]],
    }


def render(rows, header, align):
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    out = []
    for r in [header] + rows:
        cells = [str(c).ljust(w) if a == "<" else str(c).rjust(w) for c, w, a in zip(r, widths, align)]
        out.append("  ".join(cells).rstrip())
    out.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(out)


def mb(n):
    return f"{n / 1e6:.2f}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("runs")
    ap.add_argument("delta")
    ap.add_argument("--tar-seconds", type=float, default=None)
    ap.add_argument("--strict", action="store_true")
    args = ap.parse_args()

    runs = {}
    try:
        with open(args.runs) as f:
            for line in f:
                if line.strip():
                    r = json.loads(line)
                    r["sizes"] = sizes(r["manifest"])
                    if r["impl"] == "mlship":
                        r["result_json"] = load(r["result"])
                    runs.setdefault(r["impl"], []).append(r)
        deltas = {}
        with open(args.delta) as f:
            for line in f:
                if line.strip():
                    d = json.loads(line)
                    d["a"] = sizes(d["manifest_a"])
                    d["b"] = sizes(d["manifest_b"])
                    d["ca"] = load(d["counter_a"])
                    d["cb"] = load(d["counter_b"])
                    deltas[d["impl"]] = d
    except (OSError, ValueError, KeyError, TypeError) as e:
        print(f"table.py: {e}", file=sys.stderr)
        return 1
    if not all(i in runs for i in IMPLS):
        print(f"table.py: runs of {', '.join(i for i in IMPLS if i not in runs)} missing", file=sys.stderr)
        return 1

    missed = []
    n = max(len(v) for v in runs.values())
    med = {}
    rows = []
    for impl in IMPLS:
        secs = sorted(r["seconds"] for r in runs[impl])
        med[impl] = statistics.median(secs)
        what = "build-push-image" if impl == "mlship" else "append + mutate"
        if impl == "crane" and args.tar_seconds is not None:
            what += f" (tarballs made before: {args.tar_seconds:.3f} s for all, not timed)"
        rows.append([impl, f"{med[impl]:.3f}", f"{secs[0]:.3f}", f"{secs[-1]:.3f}", what])
    print(f"build + push, fresh repository each run (median of {n} run(s) each)")
    print(render(rows, ["impl", "median s", "min s", "max s", "what runs"], "<>>><"))
    print()
    ratio = med["mlship"] / med["crane"]
    print(render([["mlship/crane", "build+push time", f"{ratio:.2f}x", "lower is better"]],
                 ["ratio", "of", "value", "direction"], "<<><"))
    print()

    rows = []
    for impl in IMPLS:
        s = runs[impl][0]["sizes"]
        totals = sorted({r["sizes"]["total"] for r in runs[impl]})
        verdict = ""
        if impl == "mlship":
            ok = totals[-1] <= SIZE_TARGET
            verdict = f"target <= {mb(SIZE_TARGET)} MB: {'met' if ok else 'MISSED'}"
            if not ok:
                missed.append(f"image size {mb(totals[-1])} MB, target <= {mb(SIZE_TARGET)} MB")
            reported = {r["result_json"].get("size_compressed") for r in runs[impl]}
            if reported != set(totals):
                verdict += f" (mlship reported size_compressed {sorted(reported)})"
        layers = s["layers"]
        total = mb(totals[0]) if len(totals) == 1 else f"{mb(totals[0])}..{mb(totals[-1])}"
        rows.append([impl, mb(layers[0]) if layers else "-", mb(layers[1]) if len(layers) > 1 else "-",
                     str(len(layers)), f"{s['config']:,}", f"{s['manifest']:,}", total, verdict])
    print("image size, compressed (layers + config + manifest, as stored in the registry)")
    print(render(rows, ["impl", "server MB", "model MB", "layers", "config B", "manifest B", "total MB", "target"],
                 "<>>>>>><"))
    print()

    rows = []
    for impl in IMPLS:
        d = deltas.get(impl)
        if d is None:
            continue
        a, b, ca, cb = d["a"], d["b"], d["ca"], d["cb"]
        same_server = a["digests"][:1] == b["digests"][:1]
        changed = [i for i, dg in enumerate(b["digests"]) if dg not in a["digests"]]
        need = sum(b["layers"][i] for i in changed) + b["config"] + b["manifest"]
        verdict = "server layer not re-sent: met"
        if cb["bytes_up"] >= b["layers"][0] or not same_server:
            verdict = "server layer re-sent: MISSED" if same_server else "server layer changed digest: MISSED"
            if impl == "mlship":
                missed.append(f"model-only change sent {cb['bytes_up']:,} bytes ({verdict})")
        rows.append([impl, f"{ca['bytes_up']:,}", f"{cb['bytes_up']:,}", f"{need:,}",
                     f"{cb['blob_uploads']}", f"{cb['bytes_up'] / b['total'] * 100:.1f}%",
                     verdict if impl == "mlship" else ("server layer not re-sent" if "met" in verdict else verdict.split(":")[0])])
    print("model-only change: push A, then B (retrained, another seed) to the same repository, through the counting proxy")
    print(render(rows, ["impl", "bytes up A", "bytes up B", "new blobs + config + manifest of B", "blob uploads B",
                        "B sent / B size", "target"], "<>>>>><"))
    print()

    if missed:
        print("targets missed: " + "; ".join(missed))
        if args.strict:
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
