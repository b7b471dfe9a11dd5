"""Executors for the oracle's own tests (--executor executors:NAME)."""

import os
import signal
from concurrent.futures import Executor, Future


class InlineExecutor(Executor):
    """Runs each call in submit(), in the caller's thread."""

    def __init__(self, max_workers=None):
        if max_workers is not None and max_workers <= 0:
            raise ValueError('max_workers must be greater than 0')
        self._shutdown = False

    def submit(self, fn, /, *args, **kwargs):
        if self._shutdown:
            raise RuntimeError('cannot schedule new futures after shutdown')
        f = Future()
        f.set_running_or_notify_cancel()
        try:
            f.set_result(fn(*args, **kwargs))
        except BaseException as e:
            f.set_exception(e)
        return f

    def shutdown(self, wait=True, *, cancel_futures=False):
        self._shutdown = True


def inline(max_workers=None):
    return InlineExecutor(max_workers=max_workers)


class _Suicidal(InlineExecutor):
    def submit(self, fn, /, *args, **kwargs):
        os.kill(os.getpid(), signal.SIGKILL)


def suicidal(max_workers=None, **kw):
    return _Suicidal(max_workers)
