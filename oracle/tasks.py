"""The task function of the Python oracle: run_task(program, gatedir) runs
one task program of conformance/SCENARIOS.md ("Task programs"). It is
module-level so that it pickles for ProcessPoolExecutor.

Gates are files in the scenario's private folder (gatedir): opening a gate
creates its file; waiting for one polls for the file every millisecond.

The driver sets, in the script's process:
  DRIVER_PID  its pid (a task running in another process counts its calls
              per process, else per thread);
  POOL        the scenario's executor (a task's `submit` uses it; in a
              forked worker this is a copy of the executor, and using it
              deadlocks, which is the documented outcome);
and calls define_future() for every future the script names, for the
tasks' `result F`.
"""

import builtins
import os
import signal
import threading
import time

import lang

DRIVER_PID = None
POOL = None

_futures = {}
_futures_cond = threading.Condition()
_local = threading.local()
_process_calls = 0
_programs = {}


def define_future(name, future):
    with _futures_cond:
        _futures[name] = future
        _futures_cond.notify_all()


def gate_path(gatedir, gate):
    return os.path.join(gatedir, gate)


def open_gate(gatedir, gate):
    fd = os.open(gate_path(gatedir, gate), os.O_CREAT | os.O_WRONLY, 0o600)
    os.close(fd)


def wait_gate(gatedir, gate):
    path = gate_path(gatedir, gate)
    while not os.path.exists(path):
        time.sleep(0.001)


def _program(text):
    p = _programs.get(text)
    if p is None:
        p = lang.parse_program(text)
        _programs[text] = p
    return p


def _count_call():
    global _process_calls
    if os.getpid() != DRIVER_PID:
        _process_calls += 1
        return
    _local.calls = getattr(_local, 'calls', 0) + 1


def _calls():
    if os.getpid() != DRIVER_PID:
        return _process_calls
    return getattr(_local, 'calls', 0)


def run_task(program, gatedir, initializer=False):
    """Runs a task program; initializer=True for a pool's initializer (not
    counted by `calls`)."""
    stmts = _program(program)
    if not initializer:
        _count_call()
    for s in stmts:
        v = s.verb
        if v == 'return':
            return s.arg
        if v == 'raise':
            raise getattr(builtins, s.arg)(s.arg2)
        if v == 'wait':
            wait_gate(gatedir, s.arg)
        elif v == 'open':
            open_gate(gatedir, s.arg)
        elif v == 'spin':
            k = 0
            for _ in range(s.arg):
                k += 1
        elif v == 'sleep':
            time.sleep(s.arg)
        elif v == 'calls':
            return _calls()
        elif v == 'thread_name':
            return threading.current_thread().name
        elif v == 'result':
            with _futures_cond:
                _futures_cond.wait_for(lambda: s.arg in _futures)
                f = _futures[s.arg]
            return f.result()
        elif v == 'submit':
            if POOL is None:
                raise RuntimeError('this worker does not know its pool')
            return POOL.submit(run_task, s.arg, gatedir).result()
        elif v == 'exit':
            os._exit(s.arg)
        elif v == 'kill':
            os.kill(os.getpid(), getattr(signal, s.arg))
            while True:
                time.sleep(1)
    return None
