#!/usr/bin/env python3
"""CPython's pools on the workloads of bench/process_pool_bench.cc.

Times, with time.perf_counter (wall clock), under the same names as the C
benchmarks so one JSON reader compares them:

  RoundTrip/<pool>/workers:1          submit a no-op call, wait for it
  Batch/<pool>/workers:N/tasks:T      submit T no-op calls, then every result
  IsPrime/<pool>/workers:N/copies:K   the docs' map(is_prime, PRIMES) over
                                      K copies of PRIMES

<pool> is "thread" (ThreadPoolExecutor) or "process" (ProcessPoolExecutor,
the platform's default start method). Each pool is made and its workers
started before timing. Writes Google Benchmark's JSON schema (one entry a
benchmark, real_time per iteration in its time_unit, items_per_second for
batches). Standard library only.
"""
import argparse
import concurrent.futures as cf
import json
import math
import os
import platform
import sys
import time

PRIMES = [
    112272535095293,
    112582705942171,
    112272535095293,
    115280095190773,
    115797848077099,
    1099726899285419,
]

UNITS = {"ns": 1e9, "ms": 1e3}


def is_prime(n):
    """The docs' is_prime."""
    if n % 2 == 0:
        return False
    sqrt_n = int(math.floor(math.sqrt(n)))
    for i in range(3, sqrt_n + 1, 2):
        if n % i == 0:
            return False
    return True


def noop():
    return None


def make_pool(kind, workers):
    if kind == "thread":
        return cf.ThreadPoolExecutor(max_workers=workers)
    return cf.ProcessPoolExecutor(max_workers=workers)


def warm_up(ex, workers):
    for f in [ex.submit(noop) for _ in range(workers)]:
        f.result()


def round_trip(ex):
    ex.submit(noop).result()


def batch(ex, tasks):
    for f in [ex.submit(noop) for _ in range(tasks)]:
        f.result()


def primes(ex, copies):
    want = ([True] * 5 + [False]) * copies
    if list(ex.map(is_prime, PRIMES * copies)) != want:
        raise RuntimeError("is_prime gave a wrong answer")


def measure(fn, min_time):
    """Iterations and seconds: at least one iteration and min_time seconds,
    after one untimed call."""
    fn()
    iterations, start = 0, time.perf_counter()
    while True:
        fn()
        iterations += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_time:
            return iterations, elapsed


def entry(name, unit, iterations, elapsed, items=None):
    per = elapsed / iterations * UNITS[unit]
    e = {
        "name": name,
        "run_name": name,
        "run_type": "iteration",
        "repetitions": 1,
        "repetition_index": 0,
        "threads": 1,
        "iterations": iterations,
        "real_time": per,
        "cpu_time": per,
        "time_unit": unit,
    }
    if items:
        e["items_per_second"] = items * iterations / elapsed
    return e


def benchmarks(kinds, tasks):
    """(name, unit, workers, kind, body, items) for every benchmark."""
    for kind in kinds:
        yield (f"RoundTrip/{kind}/workers:1/real_time", "ns", 1, kind,
               round_trip, None)
        for workers in (1, 2):
            yield (f"Batch/{kind}/workers:{workers}/tasks:{tasks}/real_time",
                   "ms", workers, kind, lambda ex: batch(ex, tasks), tasks)
        for workers in (1, 2):
            for copies in (1, 4):
                yield (f"IsPrime/{kind}/workers:{workers}/copies:{copies}"
                       "/real_time", "ms", workers, kind,
                       lambda ex, c=copies: primes(ex, c), None)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", help="write the JSON here (default: stdout)")
    parser.add_argument("--min-time", type=float, default=1.0,
                        help="seconds to time each benchmark (default 1)")
    parser.add_argument("--tasks", type=int, default=10000,
                        help="calls in a batch (default 10000)")
    parser.add_argument("--pools", default="thread,process",
                        help="comma-separated: thread, process")
    args = parser.parse_args()
    results = []
    for name, unit, workers, kind, body, items in benchmarks(
            args.pools.split(","), args.tasks):
        with make_pool(kind, workers) as ex:
            warm_up(ex, workers)
            iterations, elapsed = measure(lambda: body(ex), args.min_time)
        results.append(entry(name, unit, iterations, elapsed, items))
        r = results[-1]
        print(f"{name:<50} {r['real_time']:>12.1f} {unit} "
              f"({iterations} iterations)", file=sys.stderr)
    doc = {
        "context": {
            "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "host_name": platform.node(),
            "executable": f"{sys.executable} {platform.python_version()}",
            "num_cpus": os.cpu_count(),
            "library_build_type": "release",
        },
        "benchmarks": results,
    }
    text = json.dumps(doc, indent=2) + "\n"
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
