#!/usr/bin/python3
"""The peer of the serving benchmark (bench/serve.sh): the usual Python way to
serve a model, Flask behind gunicorn, with a pickled scikit-learn pipeline.

Two uses:

  flask_app.py train --data heart.csv --target target --out model.pkl [--features age,sex,...]
      Fits mean imputation + standardisation + MLPClassifier(13 -> 64 relu ->
      32 relu -> 1 logistic) on all rows of the heart data (target binarised as
      target > 0), as bench/train/peers.py does, and pickles it with its
      feature order and class labels.

  FLASK_MODEL=model.pkl gunicorn -w 5 -b 127.0.0.1:PORT --chdir bench/serve flask_app:app
      Serves it with the request and response shapes of mlship-serve:
        POST /predict {"input": [13 numbers]}  -> {"output": 1, "probabilities": {"0": p0, "1": p1}}
        POST /predict {"inputs": [[...], ...]} -> {"outputs": [...], "probabilities": [{"0": p0, "1": p1}, ...]}
        GET  /readyz                             -> 200 once the model is loaded
      A null in an input is a missing value (imputed with the training mean).
      As in mlship-serve, a numeric class label is a JSON number in "output(s)"
      and a string as a key of "probabilities".

The handler is written as such a server usually is (request.get_json, numpy,
predict_proba, jsonify); nothing in it is tuned for the benchmark.
"""

import argparse
import os
import pickle
import sys


def train(argv):
    import csv
    import warnings

    import numpy as np
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.impute import SimpleImputer
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    ap = argparse.ArgumentParser(prog="flask_app.py train")
    ap.add_argument("--data", required=True)
    ap.add_argument("--target", default="target")
    ap.add_argument("--features", default="", help="comma-separated input order (default: the CSV's columns)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--epochs", type=int, default=50)
    ap.add_argument("--seed", type=int, default=42)
    args = ap.parse_args(argv)

    with open(args.data, newline="") as f:
        rows = list(csv.reader(f))
    header, rows = rows[0], [r for r in rows[1:] if r]
    if args.target not in header:
        sys.exit(f"flask_app.py: column {args.target!r} not in {args.data}")
    features = args.features.split(",") if args.features else [c for c in header if c != args.target]
    missing = [c for c in features if c not in header]
    if missing:
        sys.exit(f"flask_app.py: features {missing} not in {args.data}")
    cols = [header.index(c) for c in features]

    def num(s):
        return float("nan") if s.strip() in ("", "?") else float(s)

    X = np.array([[num(r[c]) for c in cols] for r in rows], dtype=np.float64)
    y = (np.array([num(r[header.index(args.target)]) for r in rows]) > 0).astype(int)

    warnings.filterwarnings("ignore", category=ConvergenceWarning)
    pipe = make_pipeline(
        SimpleImputer(strategy="mean"),
        StandardScaler(),
        MLPClassifier(hidden_layer_sizes=(64, 32), activation="relu", solver="adam",
                      learning_rate_init=0.001, batch_size=32, max_iter=args.epochs,
                      random_state=args.seed),
    ).fit(X, y)
    acc = float((pipe.predict(X) == y).mean())
    with open(args.out, "wb") as f:
        pickle.dump({"pipeline": pipe, "features": features, "classes": ["0", "1"]}, f)
    print(f"flask_app.py: trained MLPClassifier 13-64-32-1 on {len(y)} rows, "
          f"training accuracy {acc:.3f}, wrote {args.out}", file=sys.stderr)


def create_app(model_path):
    import numpy as np
    from flask import Flask, jsonify, request

    with open(model_path, "rb") as f:
        bundle = pickle.load(f)
    pipe, features, classes = bundle["pipeline"], bundle["features"], bundle["classes"]

    app = Flask(__name__)

    def as_rows(rows):
        X = np.array([[np.nan if v is None else v for v in r] for r in rows], dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != len(features):
            raise ValueError(f"each input needs {len(features)} values: {', '.join(features)}")
        return X

    @app.get("/readyz")
    def readyz():
        return "ok\n"

    @app.post("/predict")
    def predict():
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            return jsonify(error="body must be a JSON object"), 400
        try:
            if "inputs" in body:
                X = as_rows(body["inputs"])
            elif "input" in body:
                X = as_rows([body["input"]])
            else:
                return jsonify(error='body needs "input" or "inputs"'), 400
        except (TypeError, ValueError) as e:
            return jsonify(error=str(e)), 400
        proba = pipe.predict_proba(X)
        labels = [classes[i] for i in proba.argmax(axis=1)]
        probs = [dict(zip(classes, row)) for row in proba.tolist()]
        labels = [int(l) if l.isdigit() else l for l in labels]
        if "inputs" in body:
            return jsonify(outputs=labels, probabilities=probs)
        return jsonify(output=labels[0], probabilities=probs[0])

    return app


if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] != "train":
        sys.exit("usage: flask_app.py train --data CSV --out model.pkl  (serve with gunicorn flask_app:app)")
    train(sys.argv[2:])
elif os.environ.get("FLASK_MODEL"):
    app = create_app(os.environ["FLASK_MODEL"])
