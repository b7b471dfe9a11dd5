#!/usr/bin/env python3
"""CPython's concurrent.futures on tasks that wait.

The Python counterpart of bench/blocking_bench (bench/README.md), under the
same names, each ending in /real_time, in ms:

  Sleep/{thread,process}/workers:{1,2,4,8,16,32,64}/tasks:64/ms:10
  Sleep/{thread,process}/workers:20/tasks:20/ms:10      (the goal's row)
        submit T calls that each time.sleep 10 ms, then take every result
  PipeRead/{thread,process}/workers:{1,2,4,8,16,32,64}/tasks:64/ms:10
        submit T calls that each open a FIFO by path and block reading one
        byte that a responder thread of this process writes 10 ms after the
        call's request, then take every result

PipeRead's FIFOs are made in a tempfile.mkdtemp folder, removed afterwards
even on failure: one request FIFO and one reply FIFO per task index. Task i
opens reply FIFO i (by path: process workers inherit no descriptors), then
the request FIFO, writes its index there (4 bytes: one atomic pipe write),
and reads one byte from its reply FIFO (30 s at most). The responder holds
every FIFO open for reading and writing, so no byte is lost, reads the
requests, and writes each reply 10 ms after its request arrived; should it
fail, it closes them all, and every task fails at once.

--quick runs workers 1 and 64 only. Pools are made, and every worker
started, before the timing (each repetition makes its own). Standard
library only.
"""
import contextlib
import heapq
import os
import select
import shutil
import struct
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
from common import Spec, pool  # noqa: E402

POOLS = ("thread", "process")
WORKERS = (1, 2, 4, 8, 16, 32, 64)
WORKERS_QUICK = (1, 64)
TASKS = 64
MS = 10
REPLY_TIMEOUT = 30.0
RECORD = struct.Struct("=i")


def sleep_task(seconds):
    time.sleep(seconds)


def sleep_batch(kind, workers, tasks, ms):
    @contextlib.contextmanager
    def setup():
        with pool(kind, workers) as ex:
            submit, r, s = ex.submit, range(tasks), ms / 1000.0

            def run():
                for f in [submit(sleep_task, s) for _ in r]:
                    f.result()
            yield run
    return setup


def request_path(folder):
    return os.path.join(folder, "request")


def reply_path(folder, index):
    return os.path.join(folder, f"reply{index}")


def pipe_read_task(folder, index):
    """Task `index`: ask the responder, then read its one-byte reply. No
    open blocks (O_NONBLOCK): without the responder, opening the request
    FIFO fails (ENXIO), and a reply FIFO it has closed reads as EOF."""
    rfd = os.open(reply_path(folder, index), os.O_RDONLY | os.O_NONBLOCK)
    try:
        wfd = os.open(request_path(folder), os.O_WRONLY | os.O_NONBLOCK)
        try:
            os.write(wfd, RECORD.pack(index))
        finally:
            os.close(wfd)
        ready, _, _ = select.select([rfd], [], [], REPLY_TIMEOUT)
        if not ready:
            raise TimeoutError(f"no reply on {reply_path(folder, index)}")
        if os.read(rfd, 1) != b"x":
            raise RuntimeError("the responder closed the reply FIFO")
    finally:
        os.close(rfd)


class Responder:
    """A thread that answers each request (a task index on the request
    FIFO) with one byte on that task's reply FIFO, `delay` seconds after
    the request arrived."""

    STOP = -1

    def __init__(self, folder, tasks, delay):
        self.folder, self.delay = folder, delay
        self.fds = []
        self.error = None
        os.mkfifo(request_path(folder), 0o600)
        for i in range(tasks):
            os.mkfifo(reply_path(folder, i), 0o600)
        try:
            self.req = os.open(request_path(folder), os.O_RDWR)
            self.fds.append(self.req)
            self.replies = []
            for i in range(tasks):
                self.replies.append(os.open(reply_path(folder, i),
                                            os.O_RDWR))
                self.fds.append(self.replies[-1])
        except BaseException:
            self._close()
            raise
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self):
        try:
            due, buf = [], b""
            while True:
                timeout = None
                if due:
                    timeout = max(0.0, due[0][0] - time.perf_counter())
                ready, _, _ = select.select([self.req], [], [], timeout)
                if ready:
                    now = time.perf_counter()
                    buf += os.read(self.req, 4096)
                    while len(buf) >= RECORD.size:
                        (index,) = RECORD.unpack_from(buf)
                        buf = buf[RECORD.size:]
                        if index == self.STOP:
                            return
                        heapq.heappush(due, (now + self.delay, index))
                now = time.perf_counter()
                while due and due[0][0] <= now:
                    _, index = heapq.heappop(due)
                    os.write(self.replies[index], b"x")
        except BaseException as e:  # seen by close()
            self.error = e
            self._close()  # waiting tasks read EOF, later ones fail to open

    def _close(self):
        for fd in self.fds:
            os.close(fd)
        self.fds = []

    def close(self):
        if self.thread.is_alive():
            try:
                os.write(self.req, RECORD.pack(self.STOP))
            except OSError:  # the responder failed and closed it
                pass
            self.thread.join(60)
        self._close()
        if self.error is not None:
            raise RuntimeError(f"the responder failed: {self.error!r}")


def pipe_read_batch(kind, workers, tasks, ms):
    @contextlib.contextmanager
    def setup():
        folder = tempfile.mkdtemp(prefix="cf-piperead-")
        try:
            # The pool first: with fork its processes copy no responder.
            with pool(kind, workers) as ex:
                responder = Responder(folder, tasks, ms / 1000.0)
                try:
                    submit = ex.submit

                    def run():
                        for f in [submit(pipe_read_task, folder, i)
                                  for i in range(tasks)]:
                            f.result()
                    yield run
                finally:
                    responder.close()
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    return setup


def specs(args):
    workers_list = WORKERS_QUICK if args.quick else WORKERS
    out = []
    for kind in POOLS:
        for workers in workers_list:
            out.append(Spec(f"Sleep/{kind}/workers:{workers}/tasks:{TASKS}"
                            f"/ms:{MS}", "ms",
                            sleep_batch(kind, workers, TASKS, MS)))
        if not args.quick:
            out.append(Spec(f"Sleep/{kind}/workers:20/tasks:20/ms:{MS}", "ms",
                            sleep_batch(kind, 20, 20, MS)))
    for kind in POOLS:
        for workers in workers_list:
            out.append(Spec(f"PipeRead/{kind}/workers:{workers}/tasks:{TASKS}"
                            f"/ms:{MS}", "ms",
                            pipe_read_batch(kind, workers, TASKS, MS)))
    return out


def main():
    p = common.parser(__doc__.split("\n")[0],
                      epilog=__doc__.split("\n", 2)[2])
    args = common.finish_args(p.parse_args())
    return common.main(specs(args), args)


if __name__ == "__main__":
    sys.exit(main())
