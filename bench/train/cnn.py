#!/usr/bin/python3
"""CNN rows of the mlship training benchmark (bench/train/cnn.sh).

    cnn.py synth --rows 1500 --seed 42 --out cifar.csv
    cnn.py torch --data D --target label --split S --shape 1x8x8 --conv 16x3p2 --hidden 64 ...
    cnn.py table RUNS [--strict]

synth writes a seeded synthetic 3x32x32 image data set (columns p0..p3071 in
channel, row, column order, and `label` 0-9): each class has a smooth random
template (3x4x4 values, each repeated over an 8x8 block), an image is its class's
template times a random contrast plus standard normal noise per pixel, so a small
CNN learns it in a few epochs without reaching 1.0. numpy's PCG64 with the seed,
values with 4 significant digits: the same arguments give the same bytes.

torch trains the same recipe as `mlship train --kind cnn` on CPU, float32, on the
rows of mlship's split file: features standardised per pixel on the training rows
(a constant pixel becomes 0); conv blocks of FILTERSxKERNEL[pPOOL] (same padding,
stride 1, bias, activation, max pool), then the dense layers and a softmax with
cross-entropy; Adam; shuffled mini-batches; validation loss after each epoch and
the best epoch's weights restored, with early stopping after --patience epochs
without improvement (0: none). It prints one JSON object shaped like
`mlship train --json`; train_seconds covers the epoch loop only (the updates,
the validation loss, the copy of the best weights), as mlship's.

table reads the runs file (JSON lines: impl, workload, rep, e2e_seconds,
stdout) and prints, per workload, the medians and the mlship/torch ratio of
training samples/s against the issue's targets.
"""

import argparse
import json
import statistics
import sys
import time

import peers  # bench/train/peers.py: the torch epoch loop

# workload -> (torch samples/s ratio bound, description)
TARGETS = {
    "digits": (0.6, "digits CNN 1x8x8, conv 16x3 pool 2, dense 64, batch 32"),
    "cifar": (0.5, "synthetic 3x32x32 CNN, conv 32x3 pool 2, conv 64x3 pool 2, dense 64, batch 64"),
}


def synth(args):
    import numpy as np

    rng = np.random.Generator(np.random.PCG64(args.seed))
    c, h, w, k = 3, 32, 32, 10
    templates = rng.standard_normal((k, c, 4, 4)).repeat(8, axis=2).repeat(8, axis=3)
    y = rng.integers(0, k, size=args.rows)
    contrast = rng.uniform(0.15, 0.3, size=(args.rows, 1, 1, 1))
    X = templates[y] * contrast + rng.standard_normal((args.rows, c, h, w))
    X = X.reshape(args.rows, -1)
    with open(args.out, "w") as f:
        f.write(",".join(f"p{i}" for i in range(X.shape[1])) + ",label\n")
        for row, label in zip(X, y):
            f.write(",".join(f"{v:.4g}" for v in row) + f",{label}\n")


def parse_conv(s):
    out = []
    for part in s.split(","):
        pool = 1
        if "p" in part:
            part, p = part.split("p")
            pool = int(p)
        f, k = part.split("x")
        out.append((int(f), int(k), pool))
    return out


def run_torch(args):

    import numpy as np
    import pandas as pd
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    df = pd.read_csv(args.data)
    y = df[args.target].to_numpy(dtype=np.int64)
    X = df.drop(columns=[args.target]).to_numpy(dtype=np.float64)
    with open(args.split) as f:
        split = json.load(f)
    tr, va, te = (np.asarray(split[n], dtype=np.int64) for n in ("train", "val", "test"))
    mu = X[tr].mean(axis=0)
    sd = X[tr].std(axis=0)
    sd = np.where(sd == 0, 1.0, sd)
    c, h, w = (int(v) for v in args.shape.split("x"))

    def t(idx):
        x = torch.from_numpy(np.ascontiguousarray((X[idx] - mu) / sd, dtype=np.float32)).reshape(-1, c, h, w)
        return x, torch.from_numpy(y[idx])

    (Xtr, ytr), (Xva, yva), (Xte, yte) = t(tr), t(va), t(te)
    classes = int(y.max()) + 1

    act = torch.nn.ReLU if args.activation == "relu" else torch.nn.Tanh
    layers, ch = [], c
    for f, k, pool in parse_conv(args.conv):
        layers += [torch.nn.Conv2d(ch, f, k, padding=k // 2), act()]
        if pool > 1:
            layers.append(torch.nn.MaxPool2d(pool))
            h, w = h // pool, w // pool
        ch = f
    layers.append(torch.nn.Flatten())
    fan_in = ch * h * w
    for units in (int(v) for v in args.hidden.split(",")):
        layers += [torch.nn.Linear(fan_in, units), act()]
        fan_in = units
    layers.append(torch.nn.Linear(fan_in, classes))
    model = torch.nn.Sequential(*layers)
    loss_fn = torch.nn.CrossEntropyLoss()
    opt = torch.optim.Adam(model.parameters(), lr=args.learning_rate)
    gen = torch.Generator().manual_seed(args.seed)

    n = Xtr.shape[0]
    epochs_run, best_epoch, best_loss, train_seconds = peers.torch_fit(model, loss_fn, opt, gen, Xtr, ytr, Xva, yva, args)
    model.eval()
    with torch.no_grad():
        logits = model(Xte)
        acc = float((logits.argmax(dim=1) == yte).float().mean())
        test_loss = float(loss_fn(logits, yte))
    return {
        "impl": "torch",
        "version": torch.__version__,
        "dtype": "float32",
        "threads": torch.get_num_threads(),
        "epochs_run": epochs_run,
        "best_epoch": best_epoch,
        "train_rows": int(n),
        "train_seconds": train_seconds,
        "samples_per_second": n * epochs_run / train_seconds,
        "metrics": {"accuracy": acc, "log_loss": test_loss, "val_log_loss": best_loss},
    }


def parse_result(path):
    with open(path) as f:
        text = f.read()
    try:
        return json.loads(text)  # mlship's --json, indented
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


def table(args):
    by = {}
    with open(args.runs) as f:
        for line in f:
            if line.strip():
                run = json.loads(line)
                res = parse_result(run["stdout"])
                res["e2e_seconds"] = run["e2e_seconds"]
                by.setdefault(run["workload"], {}).setdefault(run["impl"], []).append(res)
    missed = []
    for wl, impls in by.items():
        bound, desc = TARGETS[wl]
        print(f"{wl}: {desc}")
        rows = [["impl", "samples/s", "min..max", "train s", "end-to-end s", "epochs", "best", "test acc"]]
        med = {}
        for impl in ("mlship", "torch"):
            runs = impls.get(impl, [])
            if not runs:
                continue
            sps = [r["train_rows"] * r["epochs_run"] / r["train_seconds"] for r in runs]
            med[impl] = (statistics.median(sps), statistics.median(r["metrics"]["accuracy"] for r in runs))
            extra = f" ({runs[0]['threads']} thread(s))" if runs[0].get("threads") else ""
            rows.append([
                impl + extra,
                f"{med[impl][0]:,.0f}",
                f"{min(sps):,.0f}..{max(sps):,.0f}",
                f"{statistics.median(r['train_seconds'] for r in runs):.2f}",
                f"{statistics.median(r['e2e_seconds'] for r in runs):.2f}",
                ",".join(sorted({str(r['epochs_run']) for r in runs})),
                ",".join(sorted({str(r['best_epoch']) for r in runs})),
                ",".join(sorted({f"{r['metrics']['accuracy']:.4f}" for r in runs})),
            ])
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        for i, r in enumerate(rows):
            print("  ".join(c.ljust(wd) if j == 0 else c.rjust(wd) for j, (c, wd) in enumerate(zip(r, widths))).rstrip())
            if i == 0:
                print("  ".join("-" * wd for wd in widths))
        if "mlship" in med and "torch" in med:
            ratio = med["mlship"][0] / med["torch"][0]
            dacc = (med["mlship"][1] - med["torch"][1]) * 100
            ok = ratio >= bound and abs(dacc) <= 1.0
            verdict = "met" if ok else "MISSED"
            print(f"mlship/torch samples/s {ratio:.2f}x (target >= {bound:.1f}x), test accuracy {dacc:+.1f} points "
                  f"(target within 1): {verdict}")
            if not ok:
                missed.append(f"{wl} {ratio:.2f}x, accuracy {dacc:+.1f} points")
        print()
    if missed:
        print("CNN targets missed: " + "; ".join(missed))
        if args.strict:
            return 1
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("synth")
    s.add_argument("--rows", type=int, default=1500)
    s.add_argument("--seed", type=int, default=42)
    s.add_argument("--out", required=True)
    t = sub.add_parser("torch")
    t.add_argument("--data", required=True)
    t.add_argument("--target", default="label")
    t.add_argument("--split", required=True)
    t.add_argument("--shape", required=True, help="CxHxW")
    t.add_argument("--conv", required=True)
    t.add_argument("--hidden", default="64")
    t.add_argument("--activation", default="relu")
    t.add_argument("--batch-size", type=int, default=32)
    t.add_argument("--epochs", type=int, default=30)
    t.add_argument("--patience", type=int, default=0)
    t.add_argument("--learning-rate", type=float, default=0.001)
    t.add_argument("--seed", type=int, default=42)
    t.add_argument("--threads", type=int, default=0)
    tb = sub.add_parser("table")
    tb.add_argument("runs")
    tb.add_argument("--strict", action="store_true")
    args = ap.parse_args()
    if args.cmd == "synth":
        synth(args)
        return 0
    if args.cmd == "table":
        return table(args)
    json.dump(run_torch(args), sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
