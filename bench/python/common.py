"""What the Python benchmark programs share: measuring, the command line,
the pools, and Google Benchmark's JSON schema.

Each program (overheads_bench.py, blocking_bench.py, cpu_bench.py) builds
a list of Spec objects, one a benchmark, and hands it to main(). A Spec's
setup is a context manager: it makes what the benchmark needs (a pool,
started workers, a folder of FIFOs), yields the timed body, and undoes it
all afterwards, even on failure. It is entered once a repetition, as
Google Benchmark calls a benchmark function anew for each.

Measuring (time.perf_counter, wall clock): one untimed warm-up call of the
body (none with --no-warm-up or --quick), then Google Benchmark's own
search for the iteration count: run 1 iteration; while the run took less
than --min-time, run again with min_time * 1.4 / elapsed times as many (at
most 10 times as many while a run takes less than a tenth of min_time).
The last run is the one reported: its iterations, real_time and cpu_time
(time.thread_time of the calling thread, as Google Benchmark's cpu_time)
per iteration. A Spec with fixed iterations runs exactly that many,
without warm-up, and its name says so, as Google Benchmark's
->Iterations(n) does ("/iterations:n").

A body is a callable, or a Body whose prepare() runs untimed before each
iteration (Google Benchmark's PauseTiming/ResumeTiming around it) and
whose counters(iterations, seconds) gives the entry's user counters from
the reported run (seconds: its timed real time).

Standard library only, Python 3.8+.
"""
import argparse
import contextlib
import datetime
import json
import multiprocessing
import os
import platform
import re
import socket
import statistics
import sys
import threading
import time
import concurrent.futures as cf

# The pools' start method: the platform's default (fork on Linux before
# Python 3.14), stated in the JSON context.
MP_CONTEXT = multiprocessing.get_context()

TO_UNIT = {"ns": 1e9, "us": 1e6, "ms": 1e3, "s": 1.0}
SUFFIX = "/real_time"


class Body:
    """A timed body with an untimed prepare() and user counters."""

    def __init__(self, run, prepare=None, counters=None):
        self.run = run
        self.prepare = prepare
        self.counters = counters


class Spec:
    """One benchmark: its name (without /real_time), time unit, setup (a
    context manager factory yielding the body), and optionally a fixed
    iteration count (no warm-up call then; the name gets Google
    Benchmark's "/iterations:N" before "/real_time", as ->Iterations(N)
    gives it)."""

    def __init__(self, name, unit, setup, iterations=None):
        if unit not in TO_UNIT:
            raise ValueError(f"unknown time unit {unit}")
        if iterations is not None:
            name += f"/iterations:{iterations}"
        self.name = name + SUFFIX
        self.unit = unit
        self.setup = setup
        self.iterations = iterations


def noop(*args):
    """A task that does nothing and returns None."""
    return None


def _sleep_pid(seconds):
    time.sleep(seconds)
    return os.getpid()


def make_pool(kind, workers, **kwargs):
    """A ThreadPoolExecutor or ProcessPoolExecutor of `workers`."""
    if kind == "thread":
        return cf.ThreadPoolExecutor(max_workers=workers, **kwargs)
    if kind == "process":
        return cf.ProcessPoolExecutor(max_workers=workers,
                                      mp_context=MP_CONTEXT, **kwargs)
    raise ValueError(f"unknown pool {kind}")


def warm_up(ex, kind, workers):
    """Starts every worker. Threads: `workers` calls that meet at a barrier,
    so each runs on a thread of its own. Processes: rounds of `workers`
    short sleeps until each ran in a different process (with fork every
    process starts on the first call; other start methods start them on
    demand), at most 20 rounds."""
    if kind == "thread":
        barrier = threading.Barrier(workers)
        for f in [ex.submit(barrier.wait, 60) for _ in range(workers)]:
            f.result()
        return
    pids = set()
    for _ in range(20):
        pids |= {f.result() for f in
                 [ex.submit(_sleep_pid, 0.02) for _ in range(workers)]}
        if len(pids) >= workers:
            return


@contextlib.contextmanager
def pool(kind, workers, **kwargs):
    """A pool of `workers`, warmed up; shut down (waiting) on exit."""
    ex = make_pool(kind, workers, **kwargs)
    try:
        warm_up(ex, kind, workers)
        yield ex
    finally:
        ex.shutdown(wait=True)


def _as_body(body):
    return body if isinstance(body, Body) else Body(body)


def _run(body, n):
    """n iterations: (real seconds, thread CPU seconds), timed parts only."""
    if body.prepare is None:
        run = body.run
        c0, t0 = time.thread_time(), time.perf_counter()
        for _ in range(n):
            run()
        t1, c1 = time.perf_counter(), time.thread_time()
        return t1 - t0, c1 - c0
    real = cpu = 0.0
    for _ in range(n):
        body.prepare()
        c0, t0 = time.thread_time(), time.perf_counter()
        body.run()
        t1, c1 = time.perf_counter(), time.thread_time()
        real += t1 - t0
        cpu += c1 - c0
    return real, cpu


MAX_ITERATIONS = 1000000000


def measure(body, min_time, iterations=None, warm_up=True):
    """(iterations, real seconds, cpu seconds) of the reported run."""
    if iterations is not None:
        real, cpu = _run(body, iterations)
        return iterations, real, cpu
    if warm_up:
        if body.prepare is not None:
            body.prepare()
        body.run()
    n = 1
    while True:
        real, cpu = _run(body, n)
        if real >= min_time or n >= MAX_ITERATIONS:
            return n, real, cpu
        multiplier = min_time * 1.4 / max(real, 1e-9)
        if real / min_time <= 0.1:
            multiplier = min(multiplier, 10.0)
        n = min(MAX_ITERATIONS, max(int(round(multiplier * n)), n + 1))


def _family(name):
    """The family a name belongs to: its parts without key:value."""
    return "/".join(p for p in name.split("/") if ":" not in p)


def _entry(spec, family, instance, reps, index, iterations, real, cpu,
           counters):
    scale = TO_UNIT[spec.unit]
    e = {
        "name": spec.name,
        "family_index": family,
        "per_family_instance_index": instance,
        "run_name": spec.name,
        "run_type": "iteration",
        "repetitions": reps,
        "repetition_index": index,
        "threads": 1,
        "iterations": iterations,
        "real_time": real / iterations * scale,
        "cpu_time": cpu / iterations * scale,
        "time_unit": spec.unit,
    }
    e.update(counters)
    return e


def _error_entry(spec, family, instance, reps, index, message):
    return {
        "name": spec.name,
        "family_index": family,
        "per_family_instance_index": instance,
        "run_name": spec.name,
        "run_type": "iteration",
        "repetitions": reps,
        "repetition_index": index,
        "threads": 1,
        "error_occurred": True,
        "error_message": message,
        "iterations": 0,
        "real_time": 0.0,
        "cpu_time": 0.0,
        "time_unit": spec.unit,
    }


def _stddev(v):
    return statistics.stdev(v) if len(v) > 1 else 0.0


def _cv(v):
    m = statistics.mean(v)
    return _stddev(v) / m if len(v) > 1 and m != 0 else 0.0


# Google Benchmark's aggregates, in its order.
AGGREGATES = (("mean", "time", statistics.mean),
              ("median", "time", statistics.median),
              ("stddev", "time", _stddev),
              ("cv", "percentage", _cv))


def _aggregates(runs):
    """Google Benchmark's aggregate entries over the repetitions `runs`
    (their iteration entries); none for a single repetition."""
    if len(runs) < 2:
        return []
    first = runs[0]
    keys = [k for k in first if k not in (
        "name", "family_index", "per_family_instance_index", "run_name",
        "run_type", "repetitions", "repetition_index", "threads",
        "iterations", "real_time", "cpu_time", "time_unit")]
    out = []
    for name, unit, fn in AGGREGATES:
        e = {
            "name": f"{first['name']}_{name}",
            "family_index": first["family_index"],
            "per_family_instance_index": first["per_family_instance_index"],
            "run_name": first["run_name"],
            "run_type": "aggregate",
            "repetitions": first["repetitions"],
            "threads": 1,
            "aggregate_name": name,
            "aggregate_unit": unit,
            "iterations": len(runs),
            "real_time": fn([r["real_time"] for r in runs]),
            "cpu_time": fn([r["cpu_time"] for r in runs]),
            "time_unit": first["time_unit"],
        }
        for k in keys:
            e[k] = fn([r[k] for r in runs])
        out.append(e)
    return out


def _mhz_per_cpu():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("cpu mhz"):
                    return int(round(float(line.split(":", 1)[1])))
    except (OSError, ValueError):
        pass
    return None


def pinned():
    """"cpu0" when this process may run on CPU 0 alone (taskset -c 0)."""
    try:
        return "cpu0" if os.sched_getaffinity(0) == {0} else "none"
    except (AttributeError, OSError):
        return "none"


def context(extra=None):
    """Google Benchmark's context fields, and the Python ones."""
    c = {
        "date": datetime.datetime.now().astimezone().isoformat(
            timespec="seconds"),
        "host_name": socket.gethostname(),
        "executable": f"{sys.executable} {os.path.abspath(sys.argv[0])}",
        "num_cpus": os.cpu_count(),
    }
    mhz = _mhz_per_cpu()
    if mhz is not None:
        c["mhz_per_cpu"] = mhz
    try:
        c["load_avg"] = list(os.getloadavg())
    except OSError:
        pass
    c["library_build_type"] = ("debug" if hasattr(sys, "gettotalrefcount")
                               else "release")
    c["language"] = "Python"
    c["implementation"] = platform.python_implementation()
    c["python_version"] = platform.python_version()
    c["pinned"] = pinned()
    c["start_method"] = MP_CONTEXT.get_start_method()
    c["switch_interval_s"] = sys.getswitchinterval()
    if extra:
        c.update(extra)
    return c


def parser(description, epilog=None):
    """The options every program takes; a program may add its own."""
    p = argparse.ArgumentParser(
        description=description, epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", metavar="FILE",
                   help="write the JSON here (default: standard output)")
    p.add_argument("--min-time", type=float, metavar="S",
                   help="seconds the reported run of each benchmark takes "
                   "at least (default 0.5, as Google Benchmark's; "
                   "--quick: 0.01)")
    p.add_argument("--repetitions", type=int, metavar="R",
                   help="run each benchmark R times: R iteration entries, "
                   "then mean, median, stddev and cv aggregates when R > 1 "
                   "(default 1)")
    p.add_argument("--filter", metavar="REGEX",
                   help="only the benchmarks whose name matches (re.search, "
                   "as --benchmark_filter; a leading '-' excludes instead)")
    p.add_argument("--list", action="store_true",
                   help="print the names that would run, and exit")
    p.add_argument("--no-warm-up", dest="warm_up", action="store_false",
                   default=None,
                   help="no untimed warm-up call before the timing "
                   "(implied by --quick)")
    p.add_argument("--quick", action="store_true",
                   help="a smoke run: min-time 0.01, one repetition, no "
                   "warm-up call, the smallest sizes")
    return p


def finish_args(args):
    """Resolves --quick against explicit --min-time and --repetitions."""
    if args.min_time is None:
        args.min_time = 0.01 if args.quick else 0.5
    if args.repetitions is None:
        args.repetitions = 1
    if args.warm_up is None:
        args.warm_up = not args.quick
    if args.min_time < 0:
        raise SystemExit("--min-time must not be negative")
    if args.repetitions < 1:
        raise SystemExit("--repetitions must be at least 1")
    return args


def select(specs, pattern):
    if not pattern:
        return list(specs)
    negate = pattern.startswith("-")
    try:
        rx = re.compile(pattern[1:] if negate else pattern)
    except re.error as e:
        raise SystemExit(f"--filter: {e}")
    return [s for s in specs if bool(rx.search(s.name)) != negate]


def _figure(e):
    extra = "".join(
        f"  {k}={e[k]:.4g}" for k in e
        if k not in ("name", "family_index", "per_family_instance_index",
                     "run_name", "run_type", "repetitions",
                     "repetition_index", "threads", "iterations",
                     "real_time", "cpu_time", "time_unit", "aggregate_name",
                     "aggregate_unit"))
    return f"{e['real_time']:12.4g} {e['time_unit']:<2}{extra}"


def run_specs(specs, args):
    """Runs every spec; (entries, failures)."""
    entries, failures = [], 0
    families = {}
    instances = {}
    for spec in specs:
        fam = _family(spec.name)
        family = families.setdefault(fam, len(families))
        instance = instances.get(fam, 0)
        instances[fam] = instance + 1
        runs = []
        started = time.perf_counter()
        for index in range(args.repetitions):
            try:
                with spec.setup() as body:
                    body = _as_body(body)
                    iterations, real, cpu = measure(
                        body, args.min_time, spec.iterations, args.warm_up)
                    counters = (body.counters(iterations, real)
                                if body.counters else {})
            except Exception as e:  # reported in the JSON, as SkipWithError
                message = f"{type(e).__name__}: {e}"
                entries.append(_error_entry(spec, family, instance,
                                            args.repetitions, index,
                                            message))
                print(f"{spec.name:<72} ERROR {message}", file=sys.stderr,
                      flush=True)
                failures += 1
                runs = None
                break
            runs.append(_entry(spec, family, instance, args.repetitions,
                               index, iterations, real, cpu, counters))
        if runs is None:
            continue
        entries.extend(runs)
        aggregates = _aggregates(runs)
        entries.extend(aggregates)
        shown = aggregates[1] if aggregates else runs[0]
        what = "median" if aggregates else ""
        print(f"{spec.name:<72} {_figure(shown)} {what}"
              f" ({runs[0]['iterations']} it, "
              f"{time.perf_counter() - started:.1f} s)", file=sys.stderr,
              flush=True)
    return entries, failures


def main(specs, args, extra_context=None):
    """Selects (--filter), lists (--list) or runs the specs and writes the
    JSON; extra_context (a dict, or a callable giving one after the run)
    is added to the context. Returns the exit status: 1 if a benchmark
    failed."""
    specs = select(specs, args.filter)
    if args.list:
        for s in specs:
            print(s.name)
        return 0
    started = time.perf_counter()
    ctx = context()
    entries, failures = run_specs(specs, args)
    if extra_context:
        ctx.update(extra_context() if callable(extra_context)
                   else extra_context)
    doc = {"context": ctx, "benchmarks": entries}
    text = json.dumps(doc, indent=2) + "\n"
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    print(f"{len(specs)} benchmarks, {failures} failed, "
          f"{time.perf_counter() - started:.1f} s", file=sys.stderr,
          flush=True)
    return 1 if failures else 0
