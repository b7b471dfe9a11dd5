#!/usr/bin/env python3
"""CPython's concurrent.futures on no-op calls: what the machinery costs.

The Python counterpart of bench/overheads_bench (bench/README.md), under
the same names, each ending in /real_time:

  RoundTrip/{thread,process}/workers:1
        submit a no-op call, wait for its result (ns)
  Batch/{thread,process}/workers:{1,2}/tasks:10000
        submit T no-op calls, each with its future, then take every
        result; items_per_second is tasks per second (ms)
  Wait/hand-made/futures:{1000,10000,100000}/{finished,pending}
  AsCompleted/hand-made/futures:{1000,10000,100000}/{finished,pending}
        wait(ALL_COMPLETED) / a full as_completed pass over N Future()
        objects, all finished before the call, or all pending and then
        finished by a second thread (asked when the timed part starts,
        which ends once it has finished them all); making the futures is
        not timed; counter ns_per_future (us)
  Callback/hand-made/callbacks:{1,16}
        make a Future(), add K done-callbacks, set_result; counter
        ns_per_callback (ns)
  Map/process/workers:2/chunksize:{1,64}/items:10000
        list(map(noop, range(T), chunksize=C)); items_per_second (ms)
  PendingBytes/{thread,process}/workers:1/calls:N
        RSS growth (/proc/self/statm) over N no-op calls queued behind a
        worker blocked on a threading.Event / multiprocessing.Event, per
        call: counter bytes_per_future. One iteration, no warm-up, in a
        fresh interpreter (whose heap holds no memory freed by earlier
        benchmarks, which would be reused without growing the RSS); the
        queue is then cancelled (shutdown with cancel_futures) so that
        nothing runs the calls. The time is the whole iteration (ms).
        N is --pending-calls: 1 000 000 by default (about 1 GB and tens
        of seconds on the process pool), 10 000 with --quick.

Pools are made, and every worker started, before the timing (each
repetition makes its own). Standard library only.
"""
import concurrent.futures as cf
import contextlib
import gc
import itertools
import json
import os
import queue
import subprocess
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
from common import Body, Spec, noop, pool  # noqa: E402

POOLS = ("thread", "process")
BATCH_TASKS = 10000
FUTURES = (1000, 10000, 100000)
MAP_ITEMS = 10000
PENDING_CALLS = 1000000
PENDING_CALLS_QUICK = 10000


# --- RoundTrip, Batch, Map ------------------------------------------------

def round_trip(kind):
    @contextlib.contextmanager
    def setup():
        with pool(kind, 1) as ex:
            submit = ex.submit
            yield lambda: submit(noop).result()
    return setup


def batch(kind, workers, tasks):
    @contextlib.contextmanager
    def setup():
        with pool(kind, workers) as ex:
            submit, r = ex.submit, range(tasks)

            def run():
                for f in [submit(noop) for _ in r]:
                    f.result()
            yield Body(run, counters=lambda it, s: {
                "items_per_second": tasks * it / s})
    return setup


def map_chunks(chunksize, items):
    @contextlib.contextmanager
    def setup():
        with pool("process", 2) as ex:
            def run():
                if len(list(ex.map(noop, range(items),
                                   chunksize=chunksize))) != items:
                    raise RuntimeError("map yielded the wrong count")
            yield Body(run, counters=lambda it, s: {
                "items_per_second": items * it / s})
    return setup


# --- Wait, AsCompleted, Callback ------------------------------------------

class Finisher:
    """A thread that finishes (set_result(None)) a list of futures when
    asked."""

    def __init__(self):
        self._todo = queue.SimpleQueue()
        self._done = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self):
        while True:
            fs = self._todo.get()
            if fs is None:
                return
            try:
                for f in fs:
                    f.set_result(None)
                self._done.put(None)
            except BaseException as e:  # handed to the waiting thread
                self._done.put(e)

    def finish_later(self, fs):
        self._todo.put(fs)

    def finished(self):
        e = self._done.get(timeout=600)
        if e is not None:
            raise e

    def close(self):
        self._todo.put(None)
        self._thread.join()


def wait_all(fs):
    done, not_done = cf.wait(fs, return_when=cf.ALL_COMPLETED)
    return len(done) == len(fs) and not not_done


def as_completed_all(fs):
    n = 0
    for _ in cf.as_completed(fs):
        n += 1
    return n == len(fs)


def finished_futures(n):
    fs = [cf.Future() for _ in range(n)]
    for f in fs:
        f.set_result(None)
    return fs


def over_futures(passfn, start, n):
    """`finished`: the futures are made and finished once (a finished
    future is left as it was by wait and as_completed), each iteration
    times the pass. `pending`: each iteration makes n new futures
    (untimed), then times asking the finisher, the pass, and the finisher
    being done."""
    def counters(it, s):
        return {"ns_per_future": s * 1e9 / (it * n)}

    @contextlib.contextmanager
    def setup():
        if start == "finished":
            fs = finished_futures(n)

            def run():
                if not passfn(fs):
                    raise RuntimeError("a future did not complete")
            yield Body(run, counters=counters)
            return
        fin = Finisher()
        try:
            made = []

            def prepare():
                made[:] = [[cf.Future() for _ in range(n)]]

            def run():
                fs = made[0]
                fin.finish_later(fs)
                ok = passfn(fs)
                fin.finished()
                if not ok:
                    raise RuntimeError("a future did not complete")
            yield Body(run, prepare=prepare, counters=counters)
        finally:
            fin.close()
    return setup


def callbacks(k):
    @contextlib.contextmanager
    def setup():
        calls = itertools.count()
        Future, rk = cf.Future, range(k)

        def cb(f, nxt=calls.__next__):
            nxt()

        def run():
            f = Future()
            for _ in rk:
                f.add_done_callback(cb)
            f.set_result(None)

        def counters(it, s):
            total = next(calls)
            if total % k or total < it * k:
                raise RuntimeError("callbacks ran the wrong number of times")
            return {"ns_per_callback": s * 1e9 / (it * k)}
        yield Body(run, counters=counters)
    return setup


# --- PendingBytes ---------------------------------------------------------

def resident_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGESIZE")


_STARTED = _RELEASE = None


def _set_events(started, release):
    global _STARTED, _RELEASE
    _STARTED, _RELEASE = started, release


def _block():
    _STARTED.set()
    if not _RELEASE.wait(3600):
        raise RuntimeError("never released")


def queued_call_bytes(kind, calls):
    """In this process: RSS growth per call over `calls` no-op calls
    queued behind a blocked worker."""
    if kind == "thread":
        started, release = threading.Event(), threading.Event()
        _set_events(started, release)
        ex = common.make_pool("thread", 1)
    else:
        started, release = common.MP_CONTEXT.Event(), common.MP_CONTEXT.Event()
        ex = common.make_pool("process", 1, initializer=_set_events,
                              initargs=(started, release))
    fs = []
    try:
        blocker = ex.submit(_block)
        if not started.wait(120):
            raise RuntimeError("the blocking call did not start")
        gc.collect()
        before = resident_bytes()
        submit = ex.submit
        fs = [submit(noop) for _ in range(calls)]
        after = resident_bytes()
    finally:
        if sys.version_info >= (3, 9):
            ex.shutdown(wait=False, cancel_futures=True)
        else:
            for f in fs:
                f.cancel()
        release.set()
        ex.shutdown(wait=True)
    blocker.result()
    return (after - before) / calls


def pending_bytes(kind, calls):
    @contextlib.contextmanager
    def setup():
        got = []

        def run():
            p = subprocess.run(
                [sys.executable, os.path.abspath(__file__), "--pending-child",
                 kind, str(calls)], stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, universal_newlines=True, timeout=3600)
            if p.returncode != 0:
                raise RuntimeError(f"the measuring process failed "
                                   f"({p.returncode}): {p.stderr.strip()}")
            got.append(json.loads(p.stdout)["bytes_per_future"])
        yield Body(run, counters=lambda it, s: {
            "bytes_per_future": got[-1]})
    return setup


# --- the list -------------------------------------------------------------

def specs(args):
    calls = args.pending_calls
    if calls is None:
        calls = PENDING_CALLS_QUICK if args.quick else PENDING_CALLS
    out = []
    for kind in POOLS:
        out.append(Spec(f"RoundTrip/{kind}/workers:1", "ns",
                        round_trip(kind)))
        for workers in (1, 2):
            out.append(Spec(
                f"Batch/{kind}/workers:{workers}/tasks:{BATCH_TASKS}", "ms",
                batch(kind, workers, BATCH_TASKS)))
    for workload, passfn in (("Wait", wait_all),
                             ("AsCompleted", as_completed_all)):
        for start in ("finished", "pending"):
            for n in FUTURES:
                out.append(Spec(
                    f"{workload}/hand-made/futures:{n}/{start}", "us",
                    over_futures(passfn, start, n)))
    for k in (1, 16):
        out.append(Spec(f"Callback/hand-made/callbacks:{k}", "ns",
                        callbacks(k)))
    for chunksize in (1, 64):
        out.append(Spec(
            f"Map/process/workers:2/chunksize:{chunksize}/items:{MAP_ITEMS}",
            "ms", map_chunks(chunksize, MAP_ITEMS)))
    for kind in POOLS:
        out.append(Spec(f"PendingBytes/{kind}/workers:1/calls:{calls}", "ms",
                        pending_bytes(kind, calls), iterations=1))
    return out


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "--pending-child":
        per_call = queued_call_bytes(sys.argv[2], int(sys.argv[3]))
        print(json.dumps({"bytes_per_future": per_call}))
        return 0
    p = common.parser(__doc__.split("\n")[0], epilog=__doc__.split(
        "\n", 2)[2])
    p.add_argument("--pending-calls", type=int, metavar="N",
                   help=f"calls queued by PendingBytes (default "
                   f"{PENDING_CALLS}; --quick: {PENDING_CALLS_QUICK})")
    args = common.finish_args(p.parse_args())
    if args.pending_calls is not None and args.pending_calls < 1:
        raise SystemExit("--pending-calls must be at least 1")
    return common.main(specs(args), args)


if __name__ == "__main__":
    sys.exit(main())
