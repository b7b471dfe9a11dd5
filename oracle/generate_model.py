"""Random deterministic scenarios for the differential runs (the generator).

The generator keeps a model of concurrent.futures: for every pool call it
knows the state it reaches once everything that can run has run (its
"quiescent" state, which gates make independent of timing), and for each
statement it writes only what is fixed whatever the timing:

* a call is *certainly unfinished* when, in the quiescent state, it is still
  queued or blocked on a gate the script has not opened (reality lags behind
  the quiescent state, never ahead of it);
* it is *certainly finished* once the script has observed it (result, wait,
  as_completed, shutdown, ...);
* in between ("uncertain": it will finish, nobody knows when) only blocking
  observations that wait for it are written.

Python 3.8+, standard library only.
"""

import itertools
import random

RAISABLE = ['ArithmeticError', 'AssertionError', 'AttributeError', 'Exception',
            'IndexError', 'KeyError', 'LookupError', 'NotImplementedError',
            'OSError', 'RuntimeError', 'TypeError', 'ValueError',
            'ZeroDivisionError']
SIGNALS = ['SIGKILL', 'SIGTERM', 'SIGSEGV', 'SIGABRT']
BROKEN_THREAD_MSG = 'A thread initializer failed, the thread pool is not usable anymore'
SHUTDOWN_MSG = 'cannot schedule new futures after shutdown'


# --------------------------------------------------------------------------
# values and their spellings

def lit_chars(s, quote):
    out = []
    for c in s:
        if c == '\\':
            out.append('\\\\')
        elif c == quote:
            out.append('\\' + quote)
        elif c == '\n':
            out.append('\\n')
        elif c == '\t':
            out.append('\\t')
        elif c == '\r':
            out.append('\\r')
        elif c == '"':           # only reached with quote "'": a program holds no "
            out.append('\\x22')
        elif ord(c) < 0x20 or ord(c) == 0x7f:
            out.append('\\x%02x' % ord(c))
        else:
            out.append(c)
    return quote + ''.join(out) + quote


def prog_str(s):
    """A str literal inside a task program: single-quoted."""
    return lit_chars(s, "'")


def stmt_str(s):
    """A statement-level string: double-quoted."""
    return lit_chars(s, '"')


def bytes_lit(b):
    out = []
    for x in b:
        c = chr(x)
        if c == '\\':
            out.append('\\\\')
        elif c == "'":
            out.append("\\'")
        elif c == '\n':
            out.append('\\n')
        elif 0x20 <= x < 0x7f and c != '"':
            out.append(c)
        else:
            out.append('\\x%02x' % x)
    return "b'" + ''.join(out) + "'"


STR_CHARS = ['a', 'b', 'z', 'Q', ' ', '0', 'é', 'ü', '\n', '\t', '\\', "'", '"',
             '\x01', '#', '.', '-', '=', 'x']
FLOATS = ['1.5', '-0.25', '1e3', '0.1', '2.5e-3', '-0.0', '3.0', '1e22', '123.456']


def gen_str(r, maxlen=6):
    return ''.join(r.choice(STR_CHARS) for _ in range(r.randint(0, maxlen)))


def gen_value(r):
    """(literal as written in a program, repr as observed)"""
    k = r.randrange(8)
    if k == 0:
        return 'None', 'None'
    if k == 1:
        v = r.choice(['True', 'False'])
        return v, v
    if k in (2, 3):
        v = r.choice([0, 1, -1, 7, 42, 2 ** 63 - 1, -2 ** 63, r.randint(-10 ** 6, 10 ** 6)])
        return str(v), repr(v)
    if k == 4:
        f = r.choice(FLOATS)
        return f, repr(float(f))
    if k in (5, 6):
        s = gen_str(r)
        return prog_str(s), repr(s)
    b = bytes(r.choice([0, 1, 0x41, 0x61, 0x5c, 0x27, 0x22, 0x7f, 0xff, 0x0a])
              for _ in range(r.randint(0, 4)))
    return bytes_lit(b), repr(b)


def gen_message(r):
    return r.choice(['boom', 'bad', '', 'k', 'x y', 'é', 'two\nlines', "it's",
                     'tab\there', 'q"q', 'no init'])


# --------------------------------------------------------------------------
# outcomes: ('value', repr) | ('exc', type, message-or-None) ; None message =
# type only (BrokenProcessPool, InvalidStateError ...)

def show_error(out):
    if out[2] is None:
        return out[1]
    return '%s %s' % (out[1], repr(out[2]))


def show_result(out):
    if out[0] == 'value':
        return out[1]
    return 'raises ' + show_error(out)


def show_exception(out):
    if out[0] == 'value':
        return 'None'
    return show_error(out)


# --------------------------------------------------------------------------
# the model

class Task:
    """A work item of the pool: a named submit, or one map item / chunk."""

    def __init__(self, seq, name, prog, items=1):
        self.seq = seq
        self.name = name          # None for map items
        self.prog = prog          # list of (verb, arg) per item: list of lists
        self.items = items
        self.state = 'queued'     # queued running done cancelled
        self.item = 0             # item of a chunk being run
        self.pc = 0
        self.values = []          # per item
        self.outcome = None       # ('value', [reprs]) or exc tuple
        self.blocked = None       # description of what it waits for
        self.confirmed = False    # the script saw it start
        self.observed = False     # the script saw it finish
        self.notified = False     # cancelled and dequeued
        self.never_notify = False
        self.signals = set()      # signal gates it opened (quiescent)
        self.callbacks = []       # [(cb, raises)]
        self.in_queue = True
        self.calls_at = None


class Hand:
    def __init__(self, name):
        self.name = name
        self.state = 'pending'    # pending running done cancelled notified
        self.outcome = None
        self.callbacks = []


class Model:
    def __init__(self, kind, workers, mtpc=None, init=None):
        self.kind = kind                    # thread process both
        self.workers = workers
        self.mtpc = mtpc
        self.init = init                    # None, 'gate', 'fail', 'spin'
        self.tasks = []
        self.open_gates = set()             # opened by the script (or initializer)
        self.task_opened = set()            # opened by tasks (quiescent)
        self.awaited = set()
        self.submitted = 0
        self.broken = False
        self.shut = False
        self.ended = False
        self.calls_known = True
        self.calls = 0                      # single worker: programs started
        self.worker_runs = 0                # programs run by the current worker (mtpc)
        self.hands = {}
        self.cb_log = []
        self.cb_known = True
        self.cb_unsynced = set()            # futures whose async callbacks are not synced
        self.kill_pending = None

    # -- helpers ---------------------------------------------------------
    def running(self):
        return [t for t in self.tasks if t.state == 'running']

    def gate_open(self, g):
        return g in self.open_gates or g in self.task_opened

    def single(self):
        return self.workers == 1

    def fire_async(self, t):
        if not t.callbacks:
            return
        where = 'other'
        if not self.single() and any(u is not t for u in self.cb_unsynced):
            self.cb_known = False
        self.cb_unsynced.add(t)
        for cb, _ in t.callbacks:
            self.cb_log.append('%s(%s) %s' % (cb, t.name, where))
        t.callbacks = []

    def fire_sync(self, fut):
        """Callbacks run now, in the script's thread."""
        if not fut.callbacks:
            return
        if self.cb_unsynced:
            self.cb_known = False
        for cb, _ in fut.callbacks:
            self.cb_log.append('%s(%s) adder' % (cb, fut.name))
        fut.callbacks = []

    def finish(self, t, outcome):
        t.state = 'done'
        t.outcome = outcome
        t.blocked = None
        if t.name is not None:
            self.fire_async(t)

    # -- running the pool to quiescence ----------------------------------
    def settle(self):
        progress = True
        while progress:
            progress = False
            for t in self.running():
                if self.advance(t):
                    progress = True
            if self.broken:
                continue
            while len(self.running()) < self.workers:
                q = [t for t in self.tasks if t.in_queue]
                if not q:
                    break
                t = q[0]
                t.in_queue = False
                progress = True
                if t.state == 'cancelled':
                    # dequeued in the quiescent state; the script knows it
                    # only later (see sync_earlier)
                    continue
                t.state = 'running'
                t.calls_at = self.start_program()
                progress = True
                self.advance(t)
                if self.broken:
                    break

    def start_program(self):
        if self.mtpc and self.worker_runs == self.mtpc:
            self.worker_runs = 0
            self.calls = 0
        self.worker_runs += 1
        self.calls += 1
        return self.calls

    def advance(self, t):
        """Run t until it blocks or ends. Returns True if it made progress."""
        moved = False
        while t.state == 'running':
            prog = t.prog[t.item]
            if t.pc >= len(prog):
                self.item_done(t, ('value', 'None'))
                moved = True
                continue
            verb, arg = prog[t.pc]
            if verb == 'wait':
                if not self.gate_open(arg):
                    t.blocked = ('gate', arg)
                    return moved
                t.pc += 1
            elif verb == 'hand':
                h = self.hands[arg]
                if h.state not in ('done', 'cancelled', 'notified'):
                    t.blocked = ('hand', arg)
                    return moved
                t.pc += 1
                if h.state == 'done':
                    out = h.outcome
                else:
                    out = ('exc', 'CancelledError', '')
                self.item_done(t, out)
            elif verb == 'open':
                t.task_opened_gate = arg
                self.task_opened.add(arg)
                t.signals.add(arg)
                t.pc += 1
            elif verb == 'spin':
                t.pc += 1
            elif verb == 'return':
                t.pc += 1
                self.item_done(t, ('value', arg))
            elif verb == 'raise':
                t.pc += 1
                self.item_done(t, ('exc', arg[0], arg[1]))
            elif verb == 'calls':
                t.pc += 1
                self.item_done(t, ('value', repr(t.calls_at)))
            elif verb == 'thread_name':
                t.pc += 1
                self.item_done(t, ('value', repr(arg)))
            elif verb in ('exit', 'kill'):
                self.break_pool()
                return True
            else:
                raise AssertionError(verb)
            t.blocked = None
            moved = True
        return moved

    def item_done(self, t, out):
        if out[0] == 'exc':
            self.finish(t, out)
            return
        t.values.append(out[1])
        t.item += 1
        t.pc = 0
        if t.item == t.items:
            self.finish(t, ('value', t.values))
        else:
            t.calls_at = self.start_program()

    def break_pool(self):
        self.broken = True
        hit = [t for t in self.tasks if t.state in ('queued', 'running')]
        with_cbs = [t for t in hit if t.callbacks]
        if len(with_cbs) > 1:
            self.cb_known = False
        for t in hit:
            t.in_queue = False
            self.finish(t, ('exc', 'BrokenProcessPool', None))

    def fail_init(self):
        """The initializer failed in the first worker: the queue is failed."""
        self.broken = True
        typ = 'BrokenProcessPool' if self.kind == 'process' else 'BrokenThreadPool'
        msg = None if self.kind == 'process' else BROKEN_THREAD_MSG
        for t in self.tasks:
            if t.state in ('queued', 'running'):
                t.in_queue = False
                self.finish(t, ('exc', typ, msg))

    # -- classification --------------------------------------------------
    def certain(self, f):
        """'done', 'not_done', or None (uncertain)."""
        if isinstance(f, Hand):
            return 'done' if f.state in ('done', 'cancelled', 'notified') else 'not_done'
        if f.state == 'cancelled':
            return 'done'
        if f.state in ('queued', 'running'):
            return 'not_done'
        return 'done' if f.observed else None

    def waitable(self, f):
        """May f appear in wait()/as_completed() (rule 6)?"""
        if isinstance(f, Hand):
            return f.state != 'cancelled'
        if f.state == 'cancelled':
            return f.notified
        return True

    def has_exc(self, f):
        if isinstance(f, Hand):
            return f.state == 'done' and f.outcome[0] == 'exc'
        return f.state == 'done' and f.outcome[0] == 'exc'

    def observe(self, t):
        """The script saw pool call t finish."""
        if isinstance(t, Hand):
            return
        if t.state != 'done':
            return
        t.observed = True
        if self.kind == 'thread' and self.single():
            for u in self.tasks:
                if u.seq < t.seq:
                    self.sync_earlier(u)

    def sync_earlier(self, u):
        if u.state == 'done':
            u.observed = True
        elif u.state == 'cancelled' and not u.never_notify and not u.in_queue:
            u.notified = True

    def confirm(self, t):
        t.confirmed = True
        if self.kind == 'thread' and self.single():
            for u in self.tasks:
                if u.seq < t.seq:
                    self.sync_earlier(u)

    def uncertain_tasks(self):
        return [t for t in self.tasks if t.state == 'done' and not t.observed]
