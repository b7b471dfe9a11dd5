#!/usr/bin/env python3
"""The process pool's speed goals, read from two benchmark JSON files.

usage: goals.py C_JSON PYTHON_JSON [--markdown FILE]

C_JSON is what bench/process_pool_bench wrote (--benchmark_out), PYTHON_JSON
what bench/python/process_pool_bench.py wrote, both from the same run. Prints
each goal with its figures and "met" or "MISSED":

  round trip   RoundTrip/process/workers:1 within 2x of RoundTrip/pipe
  batch        Batch/process/workers:2/tasks:10000 at least 50x the calls a
               second of CPython's ProcessPoolExecutor on the same batch
  is_prime     IsPrime/process with 2 workers at least 1.8x faster than 1,
               over the docs' PRIMES and over 4 copies of them. (The docs'
               six calls cannot reach it: five take the same time and the
               sixth a third of that, so 2 workers need 3 units where 1
               needs 5.3, at best 1.77x.)

The goals are reported, not enforced: the exit status is 0 unless a file
cannot be read or lacks a benchmark. Standard library only.
"""
import json
import sys

SUFFIX = "/real_time"
TO_SECONDS = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}


def load(path):
    with open(path) as f:
        doc = json.load(f)
    return {b["name"].removesuffix(SUFFIX): b for b in doc["benchmarks"]
            if b.get("run_type", "iteration") == "iteration"}


def seconds(runs, name, path):
    if name not in runs:
        raise SystemExit(f"goals: {path} has no benchmark {name}")
    b = runs[name]
    return b["real_time"] * TO_SECONDS[b["time_unit"]]


def rows(c, c_path, py, py_path):
    pipe = seconds(c, "RoundTrip/pipe", c_path)
    trip = seconds(c, "RoundTrip/process/workers:1", c_path)
    yield ("round trip, process pool / bare pipe",
           f"{trip * 1e6:.1f} us / {pipe * 1e6:.1f} us",
           trip / pipe, "<=", 2.0)
    name = "Batch/process/workers:2/tasks:10000"
    c_batch, py_batch = seconds(c, name, c_path), seconds(py, name, py_path)
    yield ("10 000 no-op calls, 2 workers: cfutures / CPython calls per s",
           f"{10000 / c_batch:,.0f} / {10000 / py_batch:,.0f}",
           py_batch / c_batch, ">=", 50.0)
    for copies in (1, 4):
        one = seconds(c, f"IsPrime/process/workers:1/copies:{copies}", c_path)
        two = seconds(c, f"IsPrime/process/workers:2/copies:{copies}", c_path)
        yield (f"is_prime over {copies} x PRIMES, 1 worker / 2 workers",
               f"{one * 1e3:.1f} ms / {two * 1e3:.1f} ms", one / two, ">=",
               1.8)


def main(argv):
    if len(argv) not in (3, 5) or (len(argv) == 5 and argv[3] != "--markdown"):
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    c_path, py_path = argv[1], argv[2]
    table = ["| goal | figures | ratio | target | |", "|---|---|---|---|---|"]
    for what, figures, ratio, op, target in rows(load(c_path), c_path,
                                                  load(py_path), py_path):
        met = ratio <= target if op == "<=" else ratio >= target
        verdict = "met" if met else "MISSED"
        print(f"{what:<62} {figures:<26} {ratio:6.2f}x "
              f"(goal {op} {target}x) {verdict}")
        table.append(f"| {what} | {figures} | {ratio:.2f}x | {op} {target}x "
                     f"| {verdict} |")
    if len(argv) == 5:
        with open(argv[4], "w") as f:
            f.write("\n".join(table) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
