#!/usr/bin/python3
"""Helpers of the serving benchmark (bench/serve.sh). Standard library only.

  tools.py bodies --data heart.csv --target target [--model DIR] --rows 8 --batch-rows 256
                  --single single.jsonl --batch batch.jsonl
      Writes request bodies, one JSON object a line: ROWS single-row bodies
      {"input": [...]} taken from rows spread over the CSV, and a few batch
      bodies {"inputs": [[...], ...]} of BATCH_ROWS rows each. Values are in the
      model card's feature order (model.json "features" when --model is given,
      else the CSV's columns without the target); a "?" becomes the column mean.

  tools.py wait URL [--pid PID] [--timeout 60]
      Polls GET URL until it answers 200; fails when PID exits or time runs out.

  tools.py check URL --single single.jsonl --batch batch.jsonl [--batch-rows 256] [--single-only]
      Sends the first body of each file to URL and checks the answer: 200,
      "output" and "probabilities" for a single row, "outputs" with one entry
      a row for a batch. Prints the single-row answer.
"""

import argparse
import csv
import json
import os
import sys
import time
import urllib.error
import urllib.request


def die(msg):
    print(f"tools.py: {msg}", file=sys.stderr)
    sys.exit(1)


def cmd_bodies(args):
    with open(args.data, newline="") as f:
        rows = [r for r in csv.reader(f) if r]
    header, rows = rows[0], rows[1:]
    if args.model:
        with open(os.path.join(args.model, "model.json")) as f:
            features = json.load(f)["features"]
    else:
        features = [c for c in header if c != args.target]
    missing = [c for c in features if c not in header]
    if missing:
        die(f"features {missing} are not columns of {args.data}")
    cols = [header.index(c) for c in features]

    def num(s):
        s = s.strip()
        return None if s in ("", "?") else float(s)

    table = [[num(r[c]) for c in cols] for r in rows]
    means = []
    for j in range(len(cols)):
        vals = [r[j] for r in table if r[j] is not None]
        means.append(round(sum(vals) / len(vals), 1) if vals else 0.0)
    table = [[means[j] if v is None else v for j, v in enumerate(r)] for r in table]

    def compact(v):
        return int(v) if float(v).is_integer() else v

    table = [[compact(v) for v in r] for r in table]
    n = len(table)
    if n == 0:
        die(f"no data rows in {args.data}")
    step = max(1, n // args.rows)
    with open(args.single, "w") as f:
        for i in range(args.rows):
            f.write(json.dumps({"input": table[(i * step) % n]}, separators=(",", ":")) + "\n")
    with open(args.batch, "w") as f:
        for b in range(args.batches):
            start = b * (n // max(1, args.batches))
            batch = [table[(start + k) % n] for k in range(args.batch_rows)]
            f.write(json.dumps({"inputs": batch}, separators=(",", ":")) + "\n")


def get(url, timeout=2):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status


def post(url, body, timeout=10):
    req = urllib.request.Request(url, data=body.encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not yet reaped by the driver) still answers kill 0.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def cmd_wait(args):
    deadline = time.monotonic() + args.timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if args.pid and not pid_alive(args.pid):
            die(f"server (pid {args.pid}) exited before {args.url} answered 200")
        try:
            status = get(args.url)
            if status == 200:
                return
            last = f"status {status}"
        except urllib.error.HTTPError as e:
            last = f"status {e.code}"
        except (urllib.error.URLError, OSError) as e:
            last = str(getattr(e, "reason", e))
        time.sleep(0.05)
    die(f"{args.url} did not answer 200 within {args.timeout:g}s (last: {last})")


def first_line(path):
    with open(path) as f:
        for line in f:
            if line.strip():
                return line.strip()
    die(f"no body in {path}")


def cmd_check(args):
    status, text = post(args.url, first_line(args.single))
    if status != 200:
        die(f"single-row POST {args.url}: status {status}: {text[:300]}")
    try:
        body = json.loads(text)
    except ValueError:
        die(f"single-row POST {args.url}: not JSON: {text[:300]}")
    for k in ("output", "probabilities"):
        if k not in body:
            die(f"single-row POST {args.url}: no {k!r} in {text[:300]}")
    single = text.strip()
    if args.single_only:
        print(single[:200])
        return

    status, text = post(args.url, first_line(args.batch))
    if status != 200:
        die(f"batch POST {args.url}: status {status}: {text[:300]}")
    try:
        body = json.loads(text)
    except ValueError:
        die(f"batch POST {args.url}: not JSON: {text[:300]}")
    outs = body.get("outputs") if isinstance(body, dict) else None
    if not isinstance(outs, list) or len(outs) != args.batch_rows:
        got = len(outs) if isinstance(outs, list) else "no list"
        die(f"batch POST {args.url}: \"outputs\" should have {args.batch_rows} entries, got {got}: {text[:200]}")
    print(single[:200])


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)

    b = sub.add_parser("bodies")
    b.add_argument("--data", required=True)
    b.add_argument("--target", default="target")
    b.add_argument("--model", default="")
    b.add_argument("--rows", type=int, default=8)
    b.add_argument("--batch-rows", type=int, default=256)
    b.add_argument("--batches", type=int, default=4)
    b.add_argument("--single", required=True)
    b.add_argument("--batch", required=True)

    w = sub.add_parser("wait")
    w.add_argument("url")
    w.add_argument("--pid", type=int, default=0)
    w.add_argument("--timeout", type=float, default=60)

    c = sub.add_parser("check")
    c.add_argument("url")
    c.add_argument("--single", required=True)
    c.add_argument("--batch", required=True)
    c.add_argument("--batch-rows", type=int, default=256)
    c.add_argument("--single-only", action="store_true", help="check the single-row answer only")

    args = ap.parse_args()
    if args.cmd == "bodies":
        if args.rows < 1 or args.batch_rows < 1 or args.batches < 1:
            die("--rows, --batch-rows and --batches must be positive")
        cmd_bodies(args)
    elif args.cmd == "wait":
        cmd_wait(args)
    else:
        cmd_check(args)


if __name__ == "__main__":
    main()
