#!/usr/bin/env python3
"""CPython's concurrent.futures on CPU-bound work.

The Python counterpart of bench/cpu_bench (bench/README.md), under the same
names, each ending in /real_time, in ms (thread-gil is C only: here the GIL
is real):

  IsPrime/{thread,process}/workers:{1..2*cores}/copies:{1,4}
        the docs' list(ex.map(is_prime, PRIMES)) over K copies of PRIMES
  IsPrime/serial/copies:{1,4}
        the same in a plain loop in this thread
  IsPrimeOne/serial/index:{0..5}
        one is_prime(PRIMES[i]): the single task times the ideal makespan
        is computed from
  Granularity/{serial,thread,process}/workers:2/work_us:{1,3,10,30,100,300,1000,3000,10000}/tasks:T
        T = max(16, 200000 // work_us) tasks, each spinning a pure-Python
        loop calibrated once (when the first Granularity benchmark starts)
        to take work_us microseconds single-threaded: submitted one by one
        and every result taken, or run in a loop (serial); counter
        ns_per_task. The calibration is in the JSON context
        (spin_ns_per_loop, spin_ns_per_call).

cores is os.cpu_count(). --quick: IsPrime over workers 1 and 2*cores and
copies 1 only, Granularity at work_us 10, 100 and 10000 only. Pools are
made, and every worker started, before the timing (each repetition makes
its own). Standard library only.
"""
import contextlib
import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
from common import Body, Spec, pool  # noqa: E402

POOLS = ("thread", "process")
PRIMES = [
    112272535095293,
    112582705942171,
    112272535095293,
    115280095190773,
    115797848077099,
    1099726899285419,
]
PRIMES_EXPECTED = [True, True, True, True, True, False]
WORK_US = (1, 3, 10, 30, 100, 300, 1000, 3000, 10000)
WORK_US_QUICK = (10, 100, 10000)
GRANULARITY_WORKERS = 2


def is_prime(n):
    """The docs' is_prime."""
    if n % 2 == 0:
        return False
    sqrt_n = int(math.floor(math.sqrt(n)))
    for i in range(3, sqrt_n + 1, 2):
        if n % i == 0:
            return False
    return True


def check_primes(got, copies):
    if list(got) != PRIMES_EXPECTED * copies:
        raise RuntimeError("is_prime gave a wrong answer")


def is_prime_pool(kind, workers, copies):
    @contextlib.contextmanager
    def setup():
        args = PRIMES * copies
        with pool(kind, workers) as ex:
            yield lambda: check_primes(ex.map(is_prime, args), copies)
    return setup


def is_prime_serial(copies):
    @contextlib.contextmanager
    def setup():
        args = PRIMES * copies
        yield lambda: check_primes(map(is_prime, args), copies)
    return setup


def is_prime_one(index):
    @contextlib.contextmanager
    def setup():
        n, want = PRIMES[index], PRIMES_EXPECTED[index]

        def run():
            if is_prime(n) != want:
                raise RuntimeError("is_prime gave a wrong answer")
        yield run
    return setup


# --- Granularity ----------------------------------------------------------

def spin(loops):
    """The granularity task: a pure-Python loop."""
    for _ in range(loops):
        pass


_CALIBRATION = {}


def calibrate():
    """spin's cost: (ns a loop, ns a call of spin(0)), best of 5, measured
    once in this thread."""
    if not _CALIBRATION:
        n = 100000
        while True:
            t0 = time.perf_counter()
            spin(n)
            if time.perf_counter() - t0 >= 0.05:
                break
            n *= 2
        per_loop = []
        for _ in range(5):
            t0 = time.perf_counter()
            spin(n)
            per_loop.append((time.perf_counter() - t0) * 1e9 / n)
        per_call = []
        for _ in range(5):
            t0 = time.perf_counter()
            for _ in range(10000):
                spin(0)
            per_call.append((time.perf_counter() - t0) * 1e9 / 10000)
        _CALIBRATION["spin_ns_per_loop"] = min(per_loop)
        _CALIBRATION["spin_ns_per_call"] = min(per_call)
    return _CALIBRATION["spin_ns_per_loop"], _CALIBRATION["spin_ns_per_call"]


def loops_for(work_us):
    per_loop, per_call = calibrate()
    return max(0, int(round((work_us * 1000.0 - per_call) / per_loop)))


def granularity_tasks(work_us):
    return max(16, 200000 // work_us)


def granularity(kind, work_us, tasks):
    def counters(it, s):
        return {"ns_per_task": s * 1e9 / (it * tasks)}

    @contextlib.contextmanager
    def setup():
        loops = loops_for(work_us)
        r = range(tasks)
        if kind == "serial":
            def run():
                for _ in r:
                    spin(loops)
            yield Body(run, counters=counters)
            return
        with pool(kind, GRANULARITY_WORKERS) as ex:
            submit = ex.submit

            def run():
                for f in [submit(spin, loops) for _ in r]:
                    f.result()
            yield Body(run, counters=counters)
    return setup


def specs(args):
    cores = os.cpu_count() or 1
    if args.quick:
        workers_list, copies_list = sorted({1, 2 * cores}), (1,)
        work_list = WORK_US_QUICK
    else:
        workers_list, copies_list = range(1, 2 * cores + 1), (1, 4)
        work_list = WORK_US
    out = []
    for kind in POOLS:
        for workers in workers_list:
            for copies in copies_list:
                out.append(Spec(
                    f"IsPrime/{kind}/workers:{workers}/copies:{copies}",
                    "ms", is_prime_pool(kind, workers, copies)))
    for copies in copies_list:
        out.append(Spec(f"IsPrime/serial/copies:{copies}", "ms",
                        is_prime_serial(copies)))
    for index in range(len(PRIMES)):
        out.append(Spec(f"IsPrimeOne/serial/index:{index}", "ms",
                        is_prime_one(index)))
    for kind in ("serial",) + POOLS:
        for work_us in work_list:
            tasks = granularity_tasks(work_us)
            out.append(Spec(
                f"Granularity/{kind}/workers:{GRANULARITY_WORKERS}"
                f"/work_us:{work_us}/tasks:{tasks}", "ms",
                granularity(kind, work_us, tasks)))
    return out


def main():
    p = common.parser(__doc__.split("\n")[0],
                      epilog=__doc__.split("\n", 2)[2])
    args = common.finish_args(p.parse_args())
    return common.main(specs(args), args,
                       extra_context=lambda: dict(_CALIBRATION))


if __name__ == "__main__":
    sys.exit(main())
