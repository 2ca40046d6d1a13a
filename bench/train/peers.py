#!/usr/bin/python3
"""Peer trainers for the mlship training benchmark (bench/train.sh).

Trains the heart-disease recipe with scikit-learn's MLPClassifier or with torch
on CPU, on the rows of a split file written by `mlship train --split-out`, and
prints one JSON object shaped like `mlship train --json`:

  {"impl": ..., "epochs_run": n, "best_epoch": n, "train_rows": n,
   "train_seconds": s, "samples_per_second": x,
   "metrics": {"accuracy": ..., "log_loss": ...}, ...}

The recipe is the same for both peers and for mlship:
  - target binarised as target > 0; "?" is a missing value;
  - mean imputation, then standardisation, both fitted on the training rows only;
  - network 13 -> 64 relu -> 32 relu -> 1 sigmoid, binary cross-entropy;
  - Adam, learning rate 0.001, no weight decay, shuffled mini-batches (fixed seed);
  - up to --epochs epochs, early stopping on validation log-loss with --patience,
    then the weights of the best epoch are restored.

train_seconds covers the epoch loop only: the mini-batch updates, the per-epoch
validation loss and the copy of the best weights. Loading, preprocessing, the
test evaluation and writing the model are outside it, but inside the
end-to-end time that the driver measures around the whole process.

The script is meant for Debian's /usr/bin/python3 with python3-sklearn,
python3-torch and python3-pandas. It uses pandas to read the CSV, as a
typical training script would, so the import cost is part of end to end.

`peers.py split` writes a seeded 70/15/15 split file of the same shape as
mlship's, for testing the peers without mlship.
"""

import argparse
import json
import os
import sys
import time

T_PROCESS = time.perf_counter()


def load(data, target, split_path):
    import numpy as np
    import pandas as pd

    df = pd.read_csv(data, na_values=["?"])
    if target not in df.columns:
        sys.exit(f"peers.py: column {target!r} not in {data}")
    y = (df[target].to_numpy(dtype=np.float64) > 0).astype(np.float64)
    X = df.drop(columns=[target]).to_numpy(dtype=np.float64)
    with open(split_path) as f:
        split = json.load(f)
    parts = {}
    for name in ("train", "val", "test"):
        idx = np.asarray(split[name], dtype=np.int64)
        if idx.size == 0:
            sys.exit(f"peers.py: split {name!r} in {split_path} is empty")
        if idx.min() < 0 or idx.max() >= len(df):
            sys.exit(f"peers.py: split {name!r} in {split_path} has an index outside 0..{len(df) - 1}")
        parts[name] = (X[idx], y[idx])
    return parts


def preprocess_numpy(parts):
    """Mean imputation then standardisation, fitted on train (ddof=0, as StandardScaler)."""
    import numpy as np

    Xtr = parts["train"][0]
    mean_impute = np.nanmean(Xtr, axis=0)
    mean_impute = np.where(np.isnan(mean_impute), 0.0, mean_impute)

    def impute(X):
        X = X.copy()
        r, c = np.nonzero(np.isnan(X))
        X[r, c] = mean_impute[c]
        return X

    Xtr_i = impute(Xtr)
    mu = Xtr_i.mean(axis=0)
    sd = Xtr_i.std(axis=0)
    sd = np.where(sd == 0, 1.0, sd)
    out = {}
    for name, (X, y) in parts.items():
        out[name] = ((impute(X) - mu) / sd, y)
    return out, {"impute_mean": mean_impute.tolist(), "scale_mean": mu.tolist(), "scale_std": sd.tolist()}


def log_loss(y, p):
    import numpy as np

    p = np.clip(p, 1e-15, 1 - 1e-15)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def run_sklearn(args, parts):
    import copy
    import pickle
    import warnings

    import numpy as np
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.impute import SimpleImputer
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    warnings.filterwarnings("ignore", category=ConvergenceWarning)
    # sklearn warns when batch_size > rows and clips it; that is what we want at batch 256.
    warnings.filterwarnings("ignore", message=".*batch_size.*")

    Xtr, ytr = parts["train"]
    prep = make_pipeline(SimpleImputer(strategy="mean"), StandardScaler()).fit(Xtr)
    Xtr = prep.transform(Xtr)
    Xva, yva = prep.transform(parts["val"][0]), parts["val"][1]
    Xte, yte = prep.transform(parts["test"][0]), parts["test"][1]
    ytr_i, yva_i, yte_i = ytr.astype(int), yva.astype(int), yte.astype(int)

    clf = MLPClassifier(
        hidden_layer_sizes=tuple(args.hidden),
        activation="relu",
        solver="adam",
        alpha=0.0,  # no L2 penalty, as mlship and torch
        batch_size=args.batch_size,
        learning_rate_init=args.learning_rate,
        shuffle=True,
        # A RandomState instance, not an int: _fit re-seeds from an int on every
        # partial_fit call, which would replay the same shuffle every epoch.
        random_state=np.random.RandomState(args.seed),
    )
    classes = np.array([0, 1])

    best_loss, best_epoch, best = float("inf"), 0, None
    epochs_run = 0
    t0 = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        clf.partial_fit(Xtr, ytr_i, classes=classes)  # one epoch of shuffled mini-batches
        epochs_run = epoch
        vl = log_loss(yva, clf.predict_proba(Xva)[:, 1])
        if vl < best_loss:
            best_loss, best_epoch, best = vl, epoch, copy.deepcopy(clf)
        elif args.patience and epoch - best_epoch >= args.patience:
            break
    train_seconds = time.perf_counter() - t0
    clf = best

    p = clf.predict_proba(Xte)[:, 1]
    acc = float(np.mean((p >= 0.5).astype(int) == yte_i))
    metrics = {"accuracy": acc, "log_loss": log_loss(yte, p), "val_log_loss": best_loss}

    model_path = None
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        model_path = os.path.join(args.out, "model.pkl")
        with open(model_path, "wb") as f:
            pickle.dump(make_pipeline(prep, clf), f)
        with open(os.path.join(args.out, "metrics.json"), "w") as f:
            json.dump(metrics, f, indent=2)
    import sklearn

    return {
        "impl": "sklearn",
        "version": sklearn.__version__,
        "dtype": str(Xtr.dtype),
        "threads": None,
        "model_path": model_path,
        "epochs_run": epochs_run,
        "best_epoch": best_epoch,
        "train_rows": int(Xtr.shape[0]),
        "train_seconds": train_seconds,
        "samples_per_second": Xtr.shape[0] * epochs_run / train_seconds,
        "metrics": metrics,
    }


def torch_fit(model, loss_fn, opt, gen, Xtr, ytr, Xva, yva, args):
    """The torch epoch loop of both benchmarks: shuffled mini-batches (gen),
    the validation loss after each epoch, stop after args.patience epochs
    without a better one (0: never), the best epoch's weights restored.
    Returns (epochs_run, best_epoch, best_loss, train_seconds); the seconds
    cover the loop only."""
    import copy
    import torch

    n, bs = Xtr.shape[0], args.batch_size
    best_loss, best_epoch, best_state, epochs_run = float("inf"), 0, None, 0
    t0 = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        model.train()
        perm = torch.randperm(n, generator=gen)
        for i in range(0, n, bs):
            idx = perm[i : i + bs]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(Xtr[idx]), ytr[idx])
            loss.backward()
            opt.step()
        epochs_run = epoch
        model.eval()
        with torch.no_grad():
            vl = float(loss_fn(model(Xva), yva))
        if vl < best_loss:
            best_loss, best_epoch, best_state = vl, epoch, copy.deepcopy(model.state_dict())
        elif args.patience and epoch - best_epoch >= args.patience:
            break
    train_seconds = time.perf_counter() - t0
    model.load_state_dict(best_state)
    return epochs_run, best_epoch, best_loss, train_seconds


def run_torch(args, parts):

    import numpy as np
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    prepped, constants = preprocess_numpy(parts)
    as_t = lambda a: torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))  # noqa: E731
    Xtr, ytr = (as_t(a) for a in prepped["train"])
    Xva, yva = (as_t(a) for a in prepped["val"])
    Xte, yte = (as_t(a) for a in prepped["test"])
    ytr, yva, yte = ytr.unsqueeze(1), yva.unsqueeze(1), yte.unsqueeze(1)

    layers, fan_in = [], Xtr.shape[1]
    for h in args.hidden:
        layers += [torch.nn.Linear(fan_in, h), torch.nn.ReLU()]
        fan_in = h
    layers.append(torch.nn.Linear(fan_in, 1))  # sigmoid folded into the loss
    model = torch.nn.Sequential(*layers)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    opt = torch.optim.Adam(model.parameters(), lr=args.learning_rate)
    gen = torch.Generator().manual_seed(args.seed)

    n = Xtr.shape[0]
    epochs_run, best_epoch, best_loss, train_seconds = torch_fit(model, loss_fn, opt, gen, Xtr, ytr, Xva, yva, args)
    model.eval()
    with torch.no_grad():
        logits = model(Xte)
        p = torch.sigmoid(logits).squeeze(1).double().numpy()
        test_loss = float(loss_fn(logits, yte))
    yte_np = yte.squeeze(1).numpy()
    acc = float(np.mean((p >= 0.5) == (yte_np > 0.5)))
    metrics = {"accuracy": acc, "log_loss": test_loss, "val_log_loss": best_loss}

    model_path = None
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        model_path = os.path.join(args.out, "model.pt")
        torch.save({"state_dict": model.state_dict(), "preprocessing": constants}, model_path)
        with open(os.path.join(args.out, "metrics.json"), "w") as f:
            json.dump(metrics, f, indent=2)

    return {
        "impl": "torch",
        "version": torch.__version__,
        "dtype": "float32",
        "threads": torch.get_num_threads(),
        "model_path": model_path,
        "epochs_run": epochs_run,
        "best_epoch": best_epoch,
        "train_rows": int(n),
        "train_seconds": train_seconds,
        "samples_per_second": n * epochs_run / train_seconds,
        "metrics": metrics,
    }


def make_split(args):
    """Seeded 70/15/15 split of the data rows, for testing without mlship."""
    import numpy as np

    with open(args.data) as f:
        n = sum(1 for line in f if line.strip()) - 1
    idx = np.random.RandomState(args.seed).permutation(n)
    n_val, n_test = round(n * 0.15), round(n * 0.15)
    split = {
        "train": sorted(idx[n_val + n_test :].tolist()),
        "val": sorted(idx[:n_val].tolist()),
        "test": sorted(idx[n_val : n_val + n_test].tolist()),
    }
    with open(args.split, "w") as f:
        json.dump(split, f)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("impl", choices=["sklearn", "torch", "split"])
    ap.add_argument("--data", required=True)
    ap.add_argument("--split", required=True, help="split JSON (read; written by `split`)")
    ap.add_argument("--target", default="target")
    ap.add_argument("--hidden", default="64,32", type=lambda s: [int(x) for x in s.split(",")])
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--patience", type=int, default=10, help="epochs without a better validation loss before stopping (0: never)")
    ap.add_argument("--learning-rate", type=float, default=0.001)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--out", help="directory to write the model and metrics to")
    args = ap.parse_args()

    if args.impl == "split":
        make_split(args)
        return
    parts = load(args.data, args.target, args.split)
    result = (run_sklearn if args.impl == "sklearn" else run_torch)(args, parts)
    result["batch_size"] = args.batch_size
    result["process_seconds"] = time.perf_counter() - T_PROCESS
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
