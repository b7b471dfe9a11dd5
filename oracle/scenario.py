#!/usr/bin/env python3
"""The Python oracle: runs conformance scenario files (conformance/SCENARIOS.md)
on CPython's ThreadPoolExecutor and ProcessPoolExecutor, or on any executor
given as --executor module:factory, and checks their expectations.

    python3 oracle/scenario.py [options] FILE_OR_FOLDER...

Every scenario run is a child process (this script with --child) in its own
process group, under a watchdog in this process. See oracle/README.md.
Standard library only; Python 3.8+.
"""

import argparse
import builtins
import concurrent.futures as cf
import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import lang   # noqa: E402
import tasks  # noqa: E402

REPO = os.path.dirname(HERE)
SCENARIOS_ROOT = os.path.join(REPO, 'conformance', 'scenarios')
DEFAULT_ALLOWED = os.path.join(HERE, 'allowed-differences.tsv')
ALLOWED_HEADER = ['scenario', 'pool', 'line', 'observed', 'issue', 'reason']
GONE_POLL_SECONDS = 10.0
# An allowed difference whose observed text is '# hung': CPython never
# finishes that statement; the watchdog gives it this long.
HUNG = ['#', 'hung']
HUNG_ENTRY_SECONDS = 10.0

USAGE_EPILOG = """\
Exit status: 0 when every expectation held (allowed differences included),
1 when one failed or a run hung or died, 2 when a file is malformed (nothing
is run then) or the command line is wrong.
"""


# ---------------------------------------------------------------------------
# Observations
# ---------------------------------------------------------------------------

def error_tokens(exc):
    """An error as canonical tokens: TYPE 'MESSAGE'."""
    args = getattr(exc, 'args', ())
    if len(args) == 1 and isinstance(args[0], str):
        msg = args[0]
    elif not args:
        msg = ''
    else:
        msg = str(exc)
    return [type(exc).__name__, repr(msg)]


def set_tokens(names):
    return ('{' + ' '.join(sorted(names)) + '}').split(' ')


# ---------------------------------------------------------------------------
# Allowed differences
# ---------------------------------------------------------------------------

class Entry(object):
    def __init__(self, scenario, pool, line, observed, issue, reason,
                 where):
        self.scenario, self.pool, self.line = scenario, pool, line
        self.observed = observed          # canonical tokens
        self.issue, self.reason, self.where = issue, reason, where

    @property
    def observed_text(self):
        return ' '.join(self.observed)


class AllowedDifferences(object):
    """oracle/allowed-differences.tsv: where CPython is known to differ from
    the documented expectation a scenario states."""

    def __init__(self, path=None):
        self.path = path
        self.entries = []
        self.base = os.path.dirname(os.path.abspath(path)) if path else HERE

    @classmethod
    def load(cls, path):
        """Reads the file; raises ValueError('PATH:LINE: what is wrong')."""
        self = cls(path)
        if not os.path.exists(path):
            return self
        with open(path, encoding='utf-8') as f:
            lines = f.read().split('\n')
        header_seen = False
        seen = {}
        for n, raw in enumerate(lines, 1):
            line = raw.rstrip('\r')
            if not line.strip() or line.lstrip().startswith('#'):
                continue
            cols = line.split('\t')
            where = '%s:%d' % (path, n)
            if not header_seen:
                if cols != ALLOWED_HEADER:
                    raise ValueError('%s: the first row must be the header '
                                     '%s' % (where, '\\t'.join(ALLOWED_HEADER)))
                header_seen = True
                continue
            if len(cols) != 6:
                raise ValueError('%s: %d columns, 6 expected (tab-separated)'
                                 % (where, len(cols)))
            scen, pool, ln, observed, issue, reason = [c.strip() for c in cols]
            if pool not in ('thread', 'process', 'both'):
                raise ValueError('%s: pool is thread, process or both' % where)
            if not re.match(r'[1-9][0-9]*\Z', ln):
                raise ValueError('%s: line must be a line number' % where)
            if not re.match(r'gh-[0-9]+\Z', issue):
                raise ValueError('%s: issue must be gh-NNNNN' % where)
            if not scen.endswith('.scenario') or os.path.isabs(scen):
                raise ValueError('%s: scenario must be a path relative to '
                                 'conformance/scenarios' % where)
            try:
                obs = (HUNG if observed == ' '.join(HUNG)
                       else lang.canonical_tokens(observed))
            except lang.ParseError as e:
                raise ValueError('%s: observed: %s (column %d)'
                                 % (where, e.msg, e.col))
            if not obs:
                raise ValueError('%s: observed is empty' % where)
            if not reason:
                raise ValueError('%s: reason is empty' % where)
            for p in (('thread', 'process') if pool == 'both' else (pool,)):
                key = (scen, p, int(ln))
                if key in seen:
                    raise ValueError('%s: the same scenario, pool and line as '
                                     '%s' % (where, seen[key]))
                seen[key] = where
            self.entries.append(Entry(scen, pool, int(ln), obs, issue, reason,
                                      where))
        return self

    def key_of(self, path):
        """The name of a scenario file in the table: relative to
        conformance/scenarios, or (outside it) to the table's folder."""
        real = os.path.realpath(path)
        for root in (os.path.realpath(SCENARIOS_ROOT),
                     os.path.realpath(self.base)):
            rel = os.path.relpath(real, root)
            if not rel.startswith(os.pardir + os.sep) and rel != os.pardir:
                return rel.replace(os.sep, '/')
        return real

    def lookup(self, path, pool, line):
        key = self.key_of(path)
        for e in self.entries:
            if e.scenario == key and e.line == line and e.pool in (pool,
                                                                   'both'):
                return e
        return None


def judge(st, observed, entry):
    """Judges one observation against the statement's expectation and the
    allowed-differences entry covering it (or None).
    Returns (verdict, shown, message): verdict is 'confirmed', 'allowed',
    'observed' (no expectation), or 'failed'; shown the tokens the trace
    prints; message a line to print, or None."""
    obs_text = ' '.join(observed)
    if st.expect is not None:
        ok, shown = lang.match(st.expect, observed)
        if ok:
            if entry is not None:
                return ('failed', shown, 'CPython changed: line %d now '
                        'observes the documented %s; the allowed-differences '
                        'entry (%s, %s) is stale'
                        % (st.line, st.expect_text, entry.issue, entry.where))
            return 'confirmed', shown, None
        if entry is not None:
            eok, eshown = lang.match(entry.observed, observed)
            if eok:
                return ('allowed', eshown, 'allowed difference (%s): expected '
                        '%s, CPython observes %s' % (
                            entry.issue, st.expect_text, ' '.join(eshown)))
            return ('failed', observed, 'CPython changed: expected %s (as '
                    'documented), allowed-differences says CPython observes '
                    '%s (%s), got %s' % (st.expect_text, entry.observed_text,
                                        entry.issue, obs_text))
        return 'failed', observed, 'expected %s, got %s' % (st.expect_text,
                                                            obs_text)
    if entry is not None:
        eok, eshown = lang.match(entry.observed, observed)
        if eok:
            return 'allowed', eshown, 'allowed difference (%s): CPython ' \
                'observes %s' % (entry.issue, ' '.join(eshown))
        return ('failed', observed, 'CPython changed: allowed-differences says '
                'CPython observes %s (%s), got %s'
                % (entry.observed_text, entry.issue, obs_text))
    return 'observed', observed, None


# ---------------------------------------------------------------------------
# The child: runs one scenario on one pool
# ---------------------------------------------------------------------------

class NotApplicable(Exception):
    pass


class Child(object):
    def __init__(self, sc, pool, gatedir, proto, factory):
        self.sc, self.pool, self.gatedir = sc, pool, gatedir
        self.proto = proto
        self.factory = factory
        self.env = {}            # futures and iterators by name
        self.names = {}          # id(future) -> name
        self.ex = None
        self.ex_made = False
        self.calls = []
        self.calls_cond = threading.Condition()
        self.ident = threading.get_ident()

    def send(self, **msg):
        self.proto.write(json.dumps(msg) + '\n')
        self.proto.flush()

    def get(self, name):
        try:
            return self.env[name]
        except KeyError:
            raise NameError("name '%s' is not defined" % name)

    def executor(self):
        if not self.ex_made or self.ex is None:
            raise NameError("name 'ex' is not defined")
        return self.ex

    def bind(self, name, obj, is_future):
        self.env[name] = obj
        if is_future:
            self.names[id(obj)] = name
            tasks.define_future(name, obj)

    def run(self):
        tasks.DRIVER_PID = os.getpid()
        last = None
        for st in self.sc.statements:
            last = st
            self.send(t='line', line=st.line)
            try:
                obs = getattr(self, 'x_' + st.verb)(st)
            except NotApplicable as e:
                self.send(t='na', option=str(e))
                return
            except Exception as e:  # an API call that raised
                obs = ['raises'] + error_tokens(e)
            self.send(t='obs', line=st.line, obs=obs)
        if self.sc.deadlock:
            self.deadlock()
            return
        self.send(t='line', line=last.line if last else 0, final=True)
        for g in sorted(self.sc.gates):
            tasks.open_gate(self.gatedir, g)
        if self.ex_made and self.ex is not None:
            self.ex.shutdown(wait=True)
        self.send(t='end')

    def deadlock(self):
        names = self.sc.deadlock
        try:
            fs = [self.get(n) for n in names]
        except NameError as e:
            self.send(t='deadlock_failed', why=str(e))
        else:
            done, not_done = cf.wait(fs, timeout=1)
            if done:
                self.send(t='deadlock_failed',
                          why='finished: ' + ' '.join(
                              set_tokens(self.names[id(f)] for f in done)))
            else:
                self.send(t='deadlock', names=names)
        while True:
            time.sleep(3600)

    # -- the pool
    def pool_kwargs(self, st):
        a = st.args
        kw = {}
        if 'max_workers' in a:
            kw['max_workers'] = a['max_workers']
        if 'initializer' in a:
            kw['initializer'] = tasks.run_task
            kw['initargs'] = (a['initializer'], self.gatedir, True)
        if 'max_tasks_per_child' in a:
            kw['max_tasks_per_child'] = a['max_tasks_per_child']
        if 'thread_name_prefix' in a:
            kw['thread_name_prefix'] = a['thread_name_prefix']
        return kw

    def make_pool(self, st):
        kw = self.pool_kwargs(st)
        self.ex_made = True
        if self.factory is not None:
            try:
                ex = self.factory(**kw)
            except TypeError as e:
                m = re.search(r"unexpected keyword argument '(\w+)'", str(e))
                if m and m.group(1) in kw:
                    raise NotApplicable(m.group(1))
                raise
        elif self.pool == 'thread':
            ex = cf.ThreadPoolExecutor(**kw)
        else:
            import multiprocessing
            # fork, so that behaviour does not depend on the version's
            # default; max_tasks_per_child refuses fork, so it gets spawn,
            # what CPython picks when it is given without mp_context.
            method = 'spawn' if 'max_tasks_per_child' in kw else 'fork'
            kw['mp_context'] = multiprocessing.get_context(method)
            ex = cf.ProcessPoolExecutor(**kw)
        return ex

    def x_pool(self, st):
        self.ex = self.make_pool(st)
        tasks.POOL = self.ex
        return ['ok']

    def x_with(self, st):
        ex = self.make_pool(st)
        self.ex = ex.__enter__()
        tasks.POOL = self.ex
        return ['ok']

    def x_end(self, st):
        self.executor().__exit__(None, None, None)
        return ['ok']

    def x_shutdown(self, st):
        kw = {}
        if 'wait' in st.args:
            kw['wait'] = st.args['wait']
        if 'cancel_futures' in st.args:
            kw['cancel_futures'] = st.args['cancel_futures']
        self.executor().shutdown(**kw)
        return ['ok']

    # -- futures
    def x_future(self, st):
        self.bind(st.args['name'], cf.Future(), True)
        return ['ok']

    def x_set_running(self, st):
        return [repr(self.get(st.args['name']).set_running_or_notify_cancel())]

    def x_set_result(self, st):
        self.get(st.args['name']).set_result(st.args['value'])
        return ['ok']

    def x_set_exception(self, st):
        exc = getattr(builtins, st.args['type'])(st.args['message'])
        self.get(st.args['name']).set_exception(exc)
        return ['ok']

    def x_submit(self, st):
        f = self.executor().submit(tasks.run_task, st.args['program'],
                                   self.gatedir)
        self.bind(st.args['name'], f, True)
        return ['ok']

    def x_cancel(self, st):
        return [repr(self.get(st.args['name']).cancel())]

    def x_cancelled(self, st):
        return [repr(self.get(st.args['name']).cancelled())]

    def x_running(self, st):
        return [repr(self.get(st.args['name']).running())]

    def x_done(self, st):
        return [repr(self.get(st.args['name']).done())]

    def x_result(self, st):
        f = self.get(st.args['name'])
        if 'timeout' in st.args:
            return [repr(f.result(st.args['timeout']))]
        return [repr(f.result())]

    def x_exception(self, st):
        f = self.get(st.args['name'])
        if 'timeout' in st.args:
            e = f.exception(st.args['timeout'])
        else:
            e = f.exception()
        return ['None'] if e is None else error_tokens(e)

    def x_callback(self, st):
        f = self.get(st.args['name'])
        cb_name, raises = st.args['callback'], st.args['raises']
        adder = threading.get_ident()

        def cb(fut):
            with self.calls_cond:
                self.calls.append((cb_name, self.names.get(id(fut), '?'),
                                   threading.get_ident() == adder))
                self.calls_cond.notify_all()
            if raises:
                raise ValueError(cb_name)
        f.add_done_callback(cb)
        return ['ok']

    def x_callbacks(self, st):
        n = st.args.get('count')
        with self.calls_cond:
            if n:
                self.calls_cond.wait_for(lambda: len(self.calls) >= n, 10)
            calls = list(self.calls)
        if not calls:
            return ['none']
        out = []
        for i, (cb, fut, here) in enumerate(calls):
            out.append('%s(%s)' % (cb, fut))
            out.append(('adder' if here else 'other')
                       + (',' if i < len(calls) - 1 else ''))
        return out

    # -- wait, as_completed
    def x_wait(self, st):
        fs = [self.get(n) for n in st.args['names']]
        kw = {'return_when': getattr(cf, st.args['return_when'])}
        if 'timeout' in st.args:
            kw['timeout'] = st.args['timeout']
        done, not_done = cf.wait(fs, **kw)
        return (['done'] + set_tokens(self.names[id(f)] for f in done)
                + ['not_done'] + set_tokens(self.names[id(f)]
                                            for f in not_done))

    def x_as_completed(self, st):
        fs = [self.get(n) for n in st.args['names']]
        if 'timeout' in st.args:
            it = cf.as_completed(fs, timeout=st.args['timeout'])
        else:
            it = cf.as_completed(fs)
        self.bind(st.args['name'], it, False)
        return ['ok']

    def one(self, kind, v):
        return self.names.get(id(v), '?') if kind == 'as_completed' \
            else repr(v)

    def x_next(self, st):
        it = self.get(st.args['name'])
        try:
            v = next(it)
        except StopIteration:
            return ['stop']
        return [self.one(st.args['kind'], v)]

    def x_rest(self, st):
        it = self.get(st.args['name'])
        kind = st.args['kind']
        got = []
        try:
            while True:
                got.append(self.one(kind, next(it)))
        except StopIteration:
            end = ['stop']
        except Exception as e:
            end = ['raises'] + error_tokens(e)
        if kind == 'as_completed':
            return set_tokens(got) + end
        return got + end

    # -- map
    def x_map(self, st):
        a = st.args
        kw = {}
        for k in ('timeout', 'chunksize', 'buffersize'):
            if k in a:
                kw[k] = a[k]
        progs = a['programs']
        it = self.executor().map(tasks.run_task, progs,
                                 [self.gatedir] * len(progs), **kw)
        self.bind(a['name'], it, False)
        return ['ok']

    def x_close(self, st):
        self.get(st.args['name']).close()
        return ['ok']

    # -- gates
    def x_open(self, st):
        tasks.open_gate(self.gatedir, st.args['gate'])
        return ['ok']

    def x_await(self, st):
        tasks.wait_gate(self.gatedir, st.args['gate'])
        return ['ok']


def load_factory(spec):
    mod, _, name = spec.partition(':')
    if not mod or not name:
        raise ValueError("--executor takes module:factory, not '%s'" % spec)
    import importlib
    if os.getcwd() not in sys.path:
        sys.path.append(os.getcwd())
    obj = importlib.import_module(mod)
    for part in name.split('.'):
        obj = getattr(obj, part)
    if not callable(obj):
        raise ValueError("--executor: %s is not callable" % spec)
    return obj


def child_main(args):
    warnings.filterwarnings('ignore', category=DeprecationWarning,
                            message=r'.*fork.*')
    proto = os.fdopen(args.proto_fd, 'w', buffering=1, encoding='utf-8')
    sc = lang.parse_file(args.child)
    factory = load_factory(args.executor) if args.executor else None
    child = Child(sc, args.child_pool, args.gatedir, proto, factory)
    try:
        child.run()
    except BaseException:
        traceback.print_exc()
        sys.stderr.flush()
        os._exit(70)
    sys.stdout.flush()
    sys.stderr.flush()
    proto.flush()
    os._exit(0)


# ---------------------------------------------------------------------------
# The parent: a watchdog over each child
# ---------------------------------------------------------------------------

class Run(object):
    """The outcome of one scenario on one pool."""

    def __init__(self, sc, pool):
        self.sc, self.pool = sc, pool
        self.status = 'PASS'      # PASS FAIL SKIP N/A
        self.why = None           # for SKIP and N/A
        self.messages = []        # (is_failure, text)
        self.trace = []
        self.confirmed = self.unconfirmed = self.allowed = 0
        self.stderr = ''

    def fail(self, text):
        self.status = 'FAIL'
        self.messages.append((True, text))

    def note(self, text):
        self.messages.append((False, text))


def signal_name(num):
    try:
        return signal.Signals(num).name
    except ValueError:
        return 'signal %d' % num


def kill_group(pgid):
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def group_gone(pgid, seconds=GONE_POLL_SECONDS):
    end = time.monotonic() + seconds
    while True:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            pass
        if time.monotonic() >= end:
            return False
        time.sleep(0.05)


def run_scenario(sc, pool, opts, allowed):
    """Runs scenario sc on pool in a watched child process; returns a Run."""
    run = Run(sc, pool)
    run.trace.append('# %s on %s' % (sc.path, pool))
    if sc.python > lang.running_python():
        run.status = 'SKIP'
        run.why = 'needs Python %s, this is %s' % (
            lang.version_text(sc.python),
            lang.version_text(lang.running_python()))
        run.unconfirmed = sc.expectations()
        run.trace.append('# skipped: ' + run.why)
        return run
    gatedir = tempfile.mkdtemp(prefix='cf-oracle-gates-')
    errfile = tempfile.TemporaryFile(mode='w+b')
    rfd, wfd = os.pipe()
    cmd = [sys.executable, os.path.abspath(__file__), '--child', sc.path,
           '--child-pool', pool, '--gatedir', gatedir, '--proto-fd', str(wfd)]
    if opts.executor:
        cmd += ['--executor', opts.executor]
    try:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=errfile,
                                stderr=errfile, pass_fds=(wfd,),
                                start_new_session=True)
        os.close(wfd)
        try:
            _watch(run, sc, pool, proc, rfd, opts, allowed)
        finally:
            kill_group(proc.pid)
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                pass
    finally:
        os.close(rfd)
        shutil.rmtree(gatedir, ignore_errors=True)
        errfile.seek(0)
        run.stderr = errfile.read().decode('utf-8', 'replace')
        errfile.close()
    return run


def _watch(run, sc, pool, proc, rfd, opts, allowed):
    by_line = sc.by_line()
    deadline = time.monotonic() + opts.timeout
    buf = b''
    current = None            # (line, final)
    outcome = None            # 'end', 'deadlock', 'deadlock_failed', 'na'
    info = None
    eof = False
    judged = set()
    hang_deadline = [float('inf')]

    def handle(msg):
        nonlocal current, outcome, info
        t = msg.get('t')
        if t == 'line':
            current = (msg['line'], bool(msg.get('final')))
            e = allowed.lookup(sc.path, pool, msg['line'])
            if e is not None and e.observed == HUNG and not current[1]:
                hang_deadline[0] = time.monotonic() + HUNG_ENTRY_SECONDS
        elif t == 'obs':
            st = by_line[msg['line']]
            judged.add(st.line)
            entry = allowed.lookup(sc.path, pool, st.line)
            verdict, shown, text = judge(st, msg['obs'], entry)
            run.trace.append('%d: %s => %s' % (st.line, st.text,
                                               ' '.join(shown)))
            if verdict == 'confirmed':
                run.confirmed += 1
            elif verdict == 'allowed':
                run.allowed += 1
                run.note('%s:%d: %s' % (sc.path, st.line, text))
            elif verdict == 'failed' and not opts.trace_only:
                run.fail('%s:%d: %s' % (sc.path, st.line, text))
        elif t in ('end', 'deadlock', 'deadlock_failed', 'na'):
            outcome = t
            info = msg

    while outcome is None and not eof:
        remaining = min(deadline, hang_deadline[0]) - time.monotonic()
        if remaining <= 0:
            break
        r, _, _ = select.select([rfd], [], [], min(remaining, 0.2))
        if r:
            data = os.read(rfd, 65536)
            if not data:
                eof = True
            buf += data
        elif proc.poll() is not None:
            # the child is gone; read what is left without blocking
            while True:
                r, _, _ = select.select([rfd], [], [], 0)
                if not r:
                    break
                data = os.read(rfd, 65536)
                if not data:
                    break
                buf += data
            eof = True
        while b'\n' in buf:
            line, buf = buf.split(b'\n', 1)
            handle(json.loads(line.decode('utf-8')))
            if outcome is not None:
                break

    def where():
        if current is None:
            return 1, '(before the first statement)'
        line, final = current
        if final:
            return line, ('the end of the scenario (opening every gate, '
                          'shutdown(wait=True))')
        return line, by_line[line].text

    unconfirmed = sum(1 for s in sc.statements
                      if s.expect is not None and s.line not in judged)
    if outcome == 'na':
        run.status = 'N/A'
        run.why = 'not applicable: the executor does not take ' + \
            info['option']
        run.unconfirmed = sc.expectations()
        run.confirmed = run.allowed = 0
        run.messages = []
        run.trace.append('# ' + run.why)
        return
    run.unconfirmed = unconfirmed
    if outcome == 'end':
        try:
            proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
        rc = proc.poll()
        if rc not in (0, None):
            run.fail('%s: the child ended with status %s after the end'
                     % (sc.path, rc))
        run.trace.append('# end')
        return
    if outcome in ('deadlock', 'deadlock_failed'):
        kill_group(proc.pid)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            pass
        if outcome == 'deadlock':
            run.trace.append('# deadlock reproduced ' +
                             ' '.join(set_tokens(info['names'])))
        else:
            run.trace.append('# deadlock not reproduced: ' + info['why'])
            run.fail('%s: deadlock not reproduced: %s' % (sc.path,
                                                          info['why']))
        if not group_gone(proc.pid):
            run.fail('%s: processes of the scenario are left after the '
                     'watchdog killed its process group' % sc.path)
        return
    line, text = where()
    if not eof:
        kill_group(proc.pid)
        run.trace.append('# hung at line %d' % line)
        e = allowed.lookup(sc.path, pool, line) if current and \
            not current[1] else None
        if e is not None and e.observed == HUNG:
            run.allowed += 1
            st = by_line[line]
            run.note('%s:%d: allowed difference (%s): expected %s, CPython '
                     'hangs here (the watchdog stopped the run after %g s)'
                     % (sc.path, line, e.issue, st.expect_text or '(nothing)',
                        HUNG_ENTRY_SECONDS))
            if st.expect is not None:
                run.unconfirmed -= 1
            return
        run.fail('%s:%d: hung at: %s' % (sc.path, line, text))
        return
    try:
        rc = proc.wait(5)
    except subprocess.TimeoutExpired:
        rc = None
    if rc is not None and rc < 0:
        how = 'killed by %s' % signal_name(-rc)
    else:
        how = 'exited with status %s' % rc
    run.trace.append('# died at line %d (%s)' % (line, how))
    run.fail('%s:%d: the scenario process died (%s) at: %s'
             % (sc.path, line, how, text))


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------

def collect(paths):
    """Files given, and *.scenario files under folders given (sorted)."""
    out = []
    for p in paths:
        if os.path.isdir(p):
            found = []
            for root, dirs, files in os.walk(p):
                dirs.sort()
                for f in files:
                    if f.endswith('.scenario'):
                        found.append(os.path.join(root, f))
            out.extend(sorted(found))
        elif os.path.exists(p):
            out.append(p)
        else:
            raise FileNotFoundError(p)
    return out


def parse_all(files):
    """[Scenario], [error text]."""
    scs, errors = [], []
    for f in files:
        try:
            scs.append(lang.parse_file(f))
        except lang.FileError as e:
            errors.append(str(e))
        except OSError as e:
            errors.append('%s:1:1: cannot read: %s' % (f, e.strerror))
    return scs, errors


def make_argparser():
    ap = argparse.ArgumentParser(
        prog='scenario.py',
        description='Runs conformance scenario files on CPython '
        "concurrent.futures (the oracle): each on every pool its 'pools:' "
        'header allows, checking the expectations.',
        epilog=USAGE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('paths', nargs='*', metavar='FILE_OR_FOLDER',
                    help='scenario files, or folders searched for '
                    '*.scenario (sorted)')
    ap.add_argument('--pool', choices=('thread', 'process'),
                    help='run only on that pool')
    ap.add_argument('--trace-only', action='store_true',
                    help='print the traces, do not check expectations')
    ap.add_argument('--timeout', type=float, default=60.0, metavar='S',
                    help="the watchdog's limit per scenario run (default 60)")
    ap.add_argument('--quiet', action='store_true',
                    help='print only failures and the summary')
    ap.add_argument('--executor', metavar='MODULE:FACTORY',
                    help='run on the executor FACTORY(max_workers=, ...) '
                    'returns instead of CPython\'s pools (the scenarios run '
                    'as for --pool, or each pool they allow)')
    ap.add_argument('--allowed-differences', metavar='TSV',
                    default=DEFAULT_ALLOWED,
                    help='the allowed-differences table (default '
                    'oracle/allowed-differences.tsv)')
    ap.add_argument('-j', '--jobs', type=int, default=1, metavar='N',
                    help='scenario runs at a time (default 1)')
    ap.add_argument('--child', help=argparse.SUPPRESS)
    ap.add_argument('--child-pool', help=argparse.SUPPRESS)
    ap.add_argument('--gatedir', help=argparse.SUPPRESS)
    ap.add_argument('--proto-fd', type=int, help=argparse.SUPPRESS)
    return ap


def main(argv=None):
    ap = make_argparser()
    args = ap.parse_args(argv)
    if args.child:
        child_main(args)
        return 70
    if not args.paths:
        ap.print_usage(sys.stderr)
        print('scenario.py: error: give at least one FILE_OR_FOLDER',
              file=sys.stderr)
        return 2
    if args.timeout <= 0:
        print('scenario.py: error: --timeout must be positive',
              file=sys.stderr)
        return 2
    try:
        files = collect(args.paths)
    except FileNotFoundError as e:
        print('%s: no such file or folder' % e.args[0], file=sys.stderr)
        return 2
    scs, errors = parse_all(files)
    if errors:
        for e in errors:
            print(e, file=sys.stderr)
        return 2
    try:
        allowed = AllowedDifferences.load(args.allowed_differences)
    except ValueError as e:
        print(e, file=sys.stderr)
        return 2
    if args.executor:
        try:
            load_factory(args.executor)
        except Exception as e:
            print('scenario.py: --executor %s: %s' % (args.executor, e),
                  file=sys.stderr)
            return 2
    jobs = [(sc, pool) for sc in scs for pool in sc.pool_list()
            if args.pool in (None, pool)]
    out = sys.stdout
    totals = dict(runs=0, PASS=0, FAIL=0, SKIP=0, NA=0, confirmed=0,
                  unconfirmed=0, allowed=0)

    def report(run):
        totals['runs'] += 1
        totals['NA' if run.status == 'N/A' else run.status] += 1
        totals['confirmed'] += run.confirmed
        totals['unconfirmed'] += run.unconfirmed
        totals['allowed'] += run.allowed
        if args.trace_only:
            for line in run.trace:
                out.write(line + '\n')
            for failed, text in run.messages:
                if failed:
                    sys.stderr.write(text + '\n')
            out.flush()
            return
        for failed, text in run.messages:
            if failed or not args.quiet:
                out.write(text + '\n')
        label = '%s %s on %s' % (run.status, run.sc.path, run.pool)
        if run.why:
            label += ': ' + run.why
        if run.status == 'FAIL' or not args.quiet:
            out.write(label + '\n')
        if run.status == 'FAIL' and run.stderr.strip():
            tail = run.stderr.strip().split('\n')[-25:]
            out.write('  stderr of the scenario process:\n')
            for line in tail:
                out.write('  | ' + line + '\n')
        out.flush()

    if args.jobs > 1 and len(jobs) > 1:
        from concurrent.futures import ThreadPoolExecutor
        with ThreadPoolExecutor(max_workers=args.jobs) as tp:
            futs = [tp.submit(run_scenario, sc, pool, args, allowed)
                    for sc, pool in jobs]
            for f in futs:
                report(f.result())
    else:
        for sc, pool in jobs:
            report(run_scenario(sc, pool, args, allowed))
    failed = totals['FAIL']
    summary = ('%d runs: %d passed, %d failed, %d skipped, %d not applicable; '
               '%d expectations confirmed, %d unconfirmed, %d allowed '
               'differences' % (totals['runs'], totals['PASS'], failed,
                                totals['SKIP'], totals['NA'],
                                totals['confirmed'], totals['unconfirmed'],
                                totals['allowed']))
    (sys.stderr if args.trace_only else out).write(summary + '\n')
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
