#!/usr/bin/env python3
"""Differential scenario generator: random valid, deterministic scenarios run
on the C driver and on the Python driver (CPython), traces compared.

  python3 oracle/generate.py --seed S --count N --c-driver PATH
        [--out DIR] [--keep] [-j J] [--pool thread|process]

Scenario i uses seed S+i, so one is reproduced by --seed S+i --count 1.
Exit 0 when no mismatch, 1 otherwise. Python 3.8+, standard library only.
"""

import argparse
import concurrent.futures
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from generate_scen import generate  # noqa: E402

TRACE_LINE = re.compile(r'^(\d+): (.*?)(?: => (.*))?$')


# --------------------------------------------------------------------------
# running the drivers

def run_driver(cmd, path, pool, timeout, trace_only=False):
    argv = list(cmd) + ['--pool', pool, '--timeout', str(timeout)]
    if trace_only:
        argv.append('--trace-only')
    argv.append(path)
    try:
        p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=timeout + 30, cwd=os.path.dirname(HERE))
        out = p.stdout.decode('utf-8', 'replace')
        err = p.stderr.decode('utf-8', 'replace')
        rc = p.returncode
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b'').decode('utf-8', 'replace')
        err = 'generate.py: driver killed after %ss' % (timeout + 30)
        rc = 124
    return rc, trace_of(out), out + err


def trace_of(text):
    """The canonical trace lines of a driver's output."""
    lines = []
    inside = False
    for ln in text.splitlines():
        ln = ln.rstrip()
        if ln.startswith('# ') and ' on ' in ln and not inside:
            inside = True
            lines.append(ln)
        elif inside and TRACE_LINE.match(ln):
            lines.append(ln)
        elif inside and ln.startswith('# '):
            lines.append(ln)
            inside = False
    return lines


def pools_of(text):
    m = re.search(r'^pools:\s*(\S+)', text, re.M)
    p = m.group(1) if m else 'both'
    return ['thread', 'process'] if p == 'both' else [p]


def expectations(text):
    """{line number: expectation text} of a scenario."""
    out = {}
    for i, ln in enumerate(text.splitlines(), 1):
        s = strip_comment(ln).strip()
        if ' => ' in s:
            out[i] = s.split(' => ', 1)[1].strip()
    return out


def strip_comment(ln):
    q = None
    for i, c in enumerate(ln):
        if q:
            if c == '\\':
                continue
            if c == q:
                q = None
        elif c in '"':
            q = c
        elif c == '#':
            return ln[:i]
    return ln


def first_failed(trace, exps):
    """(line, statement, observed) of the first expectation the trace breaks."""
    for ln in trace:
        m = TRACE_LINE.match(ln)
        if not m:
            continue
        n = int(m.group(1))
        if n in exps and m.group(3) is not None and m.group(3) != exps[n]:
            return (n, m.group(2), m.group(3))
    return None


class Outcome:
    """What one scenario did on one pool with both drivers."""

    def __init__(self, pool, c, py, text):
        self.pool = pool
        self.c_rc, self.c_trace, self.c_out = c
        self.py_rc, self.py_trace, self.py_out = py
        exps = expectations(text)
        self.kind = None       # None = agreement
        self.key = None
        if self.c_rc == 2 or self.py_rc == 2:
            self.kind, self.key = 'malformed', (self.c_rc, self.py_rc)
            return
        body_c = [ln for ln in self.c_trace]
        body_p = [ln for ln in self.py_trace]
        if body_c != body_p:
            fc = first_failed(body_p, exps)
            if (self.c_rc == 1 and self.py_rc == 1 and fc is not None
                    and fc == first_failed(body_c, exps)
                    and prefix_equal(body_c, body_p, fc[0])):
                self.kind, self.key = 'model', fc[1]
                return
            self.kind = 'driver-diff'
            self.key = first_diff_stmt(body_c, body_p)
            return
        if self.c_rc != 0 or self.py_rc != 0:
            if self.c_rc == self.py_rc == 1:
                fc = first_failed(body_p, exps)
                self.kind, self.key = 'model', fc[1] if fc else None
            elif self.py_rc != 0 and self.c_rc == 0:
                self.kind, self.key = 'python-fails', self.py_rc
            else:
                self.kind, self.key = 'driver-diff', ('rc', self.c_rc, self.py_rc)

    def differing(self):
        out = []
        n = max(len(self.c_trace), len(self.py_trace))
        for i in range(n):
            a = self.c_trace[i] if i < len(self.c_trace) else '(none)'
            b = self.py_trace[i] if i < len(self.py_trace) else '(none)'
            if a != b:
                out.append('    C:      %s\n    Python: %s' % (a, b))
        return out


def prefix_equal(a, b, line):
    def upto(t):
        return [x for x in t if TRACE_LINE.match(x) and int(TRACE_LINE.match(x).group(1)) <= line]
    return upto(a) == upto(b)


def first_diff_stmt(a, b):
    """The first differing line as (statement, C observed, Python observed):
    a shrunk variant must show that same difference."""
    for i in range(max(len(a), len(b))):
        x = a[i] if i < len(a) else None
        y = b[i] if i < len(b) else None
        if x != y:
            mx = TRACE_LINE.match(x or '')
            my = TRACE_LINE.match(y or '')
            stmt = (my or mx).group(2) if (my or mx) else 'end of trace'
            return (stmt, mx.group(3) if mx else None, my.group(3) if my else None)
    return None


def run_both(args, text, path, pools=None):
    outs = []
    for pool in pools or pools_of(text):
        if args.pool and pool != args.pool:
            continue
        c = run_driver(args.c_cmd, path, pool, args.timeout)
        if not c[1]:
            # a driver that prints its trace only with --trace-only
            c2 = run_driver(args.c_cmd, path, pool, args.timeout, True)
            c = (c[0], c2[1], c[2] + c2[2])
        # the Python driver prints traces with --trace-only; its verdict is
        # asked for only when the trace breaks an expectation or C failed
        py = run_driver(args.py_cmd, path, pool, args.timeout, True)
        if py[0] == 0 and (c[0] != 0 or first_failed(py[1], expectations(text))):
            p2 = run_driver(args.py_cmd, path, pool, args.timeout)
            py = (p2[0], py[1], py[2] + p2[2])
        outs.append(Outcome(pool, c, py, text))
    return outs


# --------------------------------------------------------------------------
# shrinking

def split_scenario(text):
    head, body = [], []
    for ln in text.splitlines():
        s = strip_comment(ln).strip()
        if not body and (not s or re.match(r'^[a-z]+:', s)):
            if s:
                head.append(s)
            continue
        if s:
            body.append(s)
    return head, body


def join_scenario(head, body):
    return '\n'.join(head + [''] + body) + '\n'


def hung(o):
    return tuple(rc not in (0, 1) or 'hung at' in out or 'killed by' in out or 'died' in out
                 for rc, out in ((o.c_rc, o.c_out), (o.py_rc, o.py_out)))


class Shrinker:
    def __init__(self, args, workdir, outcome):
        self.args, self.workdir = args, workdir
        self.pool, self.kind, self.key = outcome.pool, outcome.kind, outcome.key
        self.hung = hung(outcome)
        self.sargs = argparse.Namespace(**vars(args))
        self.sargs.timeout = min(args.timeout, args.shrink_timeout)
        self.n = 0
        self.last = None
        self.deadline = time.monotonic() + args.shrink_budget
        self.spent = False

    def reproduces(self, head, body):
        if time.monotonic() > self.deadline:
            self.spent = True
            return False
        text = join_scenario(head, body)
        self.n += 1
        path = os.path.join(self.workdir, 'shrink_%d.scenario' % self.n)
        with open(path, 'w') as f:
            f.write(text)
        try:
            outs = run_both(self.sargs, text, path, [self.pool])
        finally:
            os.unlink(path)
        if not outs:
            return False
        o = outs[0]
        if o.kind != self.kind or o.key != self.key:
            return False
        # a variant that hangs (where the original did not) or is malformed
        # does not count
        if hung(o) != self.hung:
            return False
        self.last = o
        return True

    def ddmin(self, head, body):
        n = 2
        while len(body) >= 2:
            chunk = max(1, len(body) // n)
            reduced = False
            for i in range(0, len(body), chunk):
                cand = body[:i] + body[i + chunk:]
                if cand and self.reproduces(head, cand):
                    body = cand
                    n = max(n - 1, 2)
                    reduced = True
                    break
            if not reduced:
                if chunk == 1:
                    break
                n = min(len(body), n * 2)
        return body

    def simplify(self, head, body):
        """Simpler task programs and no expectations, one at a time."""
        changed = True
        while changed:
            changed = False
            for i, ln in enumerate(body):
                for cand in variants(ln):
                    nb = body[:i] + [cand] + body[i + 1:]
                    if self.reproduces(head, nb):
                        body = nb
                        changed = True
                        break
        return body

    def run(self, text):
        head, body = split_scenario(text)
        if any(h.startswith('pools:') and 'both' in h for h in head):
            h2 = [('pools: %s' % self.pool) if h.startswith('pools:') else h for h in head]
            if self.reproduces(h2, body):
                head = h2
        body = self.ddmin(head, body)
        body = self.simplify(head, body)
        body = self.ddmin(head, body)
        return join_scenario(head, body)


def variants(stmt):
    """Simpler spellings of one statement."""
    out = []
    if ' => ' in stmt:
        out.append(stmt.split(' => ', 1)[0])
    m = re.match(r'^(submit \S+ |map \S+ \[)(.*)$', stmt)
    if m:
        for prog in re.findall(r'"([^"]*)"', stmt):
            parts = [p.strip() for p in prog.split(';')]
            for k in range(len(parts)):
                if len(parts) > 1:
                    out.append(stmt.replace('"%s"' % prog, '"%s"' % '; '.join(parts[:k] + parts[k + 1:]), 1))
    return [v for v in out if v != stmt]


# --------------------------------------------------------------------------
# the run

def one(args, seed, workdir):
    text = generate(seed)
    path = os.path.join(workdir, 'gen_%d.scenario' % seed)
    with open(path, 'w') as f:
        f.write(text)
    outs = run_both(args, text, path)
    return seed, text, path, [o for o in outs if o.kind]


KIND_TEXT = {
    'driver-diff': 'the C driver differs from CPython',
    'model': 'model disagrees with both drivers',
    'malformed': 'a generated file is malformed (generator bug)',
    'python-fails': 'the Python driver fails where the C driver passes',
}


def report(args, seed, text, path, bad, workdir):
    for o in bad:
        print('=' * 72)
        print('MISMATCH seed %d on %s: %s (%s)' % (seed, o.pool, KIND_TEXT.get(o.kind, o.kind), o.key))
        print('  reproduce: python3 oracle/generate.py --seed %d --count 1 --c-driver %s'
              % (seed, args.c_driver))
        minimal = text
        if not args.no_shrink and o.kind in ('driver-diff', 'model'):
            sh = Shrinker(args, workdir, o)
            head, body = split_scenario(text)
            if not sh.reproduces(head, body):
                # a mismatch that comes and goes: shrinking would chase it
                print('  did not reproduce on a second run (it depends on '
                      'timing); scenario:')
            else:
                minimal = sh.run(text)
                if sh.last is not None:
                    o = sh.last
                print('  shrunk in %d runs%s to:' % (
                    sh.n, ' (budget spent, not minimal)' if sh.spent else ''))
        else:
            print('  scenario:')
        for ln in minimal.splitlines():
            print('    | ' + ln)
        print('  differing trace lines (C driver rc=%s, Python driver rc=%s):' % (o.c_rc, o.py_rc))
        for d in o.differing()[:12] or ['    (traces equal)']:
            print(d)
        if o.kind != 'driver-diff' or not o.differing():
            for name, out in (('C', o.c_out), ('Python', o.py_out)):
                msgs = [ln for ln in out.splitlines() if 'expected' in ln or 'hung' in ln
                        or 'error' in ln.lower()][:4]
                for ln in msgs:
                    print('    %s: %s' % (name, ln))
        sys.stdout.flush()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--seed', type=int, required=True)
    ap.add_argument('--count', type=int, default=1)
    ap.add_argument('--c-driver', required=True, help='the cf-scenario program')
    ap.add_argument('--py-driver', default=None,
                    help='the Python driver command (default: python3 oracle/scenario.py)')
    ap.add_argument('--out', help='write the generated scenarios to DIR (kept)')
    ap.add_argument('--keep', action='store_true', help='keep the temporary folder')
    ap.add_argument('-j', '--jobs', type=int, default=os.cpu_count() or 1)
    ap.add_argument('--pool', choices=['thread', 'process'])
    ap.add_argument('--timeout', type=float, default=20)
    ap.add_argument('--no-shrink', action='store_true')
    ap.add_argument('--shrink-budget', type=float, default=300,
                    help='seconds spent shrinking one mismatch at most '
                    '(default 300)')
    ap.add_argument('--shrink-timeout', type=float, default=8,
                    help='the watchdog limit while shrinking (default 8)')
    ap.add_argument('--generate-only', action='store_true',
                    help='write the scenarios, run nothing')
    args = ap.parse_args(argv)
    args.c_cmd = shlex.split(args.c_driver)
    args.py_cmd = (shlex.split(args.py_driver) if args.py_driver
                   else [sys.executable, os.path.join(HERE, 'scenario.py')])
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        workdir = os.path.abspath(args.out)
    else:
        workdir = tempfile.mkdtemp(prefix='cf-generate-')
    seeds = range(args.seed, args.seed + args.count)
    if args.generate_only:
        for s in seeds:
            with open(os.path.join(workdir, 'gen_%d.scenario' % s), 'w') as f:
                f.write(generate(s))
        print(workdir)
        return 0
    start = time.time()
    done = mism = 0
    kinds = {}
    try:
        with concurrent.futures.ThreadPoolExecutor(max(1, args.jobs)) as ex:
            futs = [ex.submit(one, args, s, workdir) for s in seeds]
            for fut in futs:
                seed, text, path, bad = fut.result()
                done += 1
                if bad:
                    mism += 1
                    for o in bad:
                        kinds[o.kind] = kinds.get(o.kind, 0) + 1
                    report(args, seed, text, path, bad, workdir)
                elif not args.out and not args.keep:
                    os.unlink(path)
                if done % 50 == 0 or done == args.count:
                    print('[%d/%d] %d mismatching scenarios, %.1fs' % (
                        done, args.count, mism, time.time() - start))
                    sys.stdout.flush()
    finally:
        if not args.out and not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        elif args.keep:
            print('scenarios kept in %s' % workdir)
    print('summary: %d scenarios (seeds %d..%d), %d mismatching%s, %.1fs' % (
        done, args.seed, args.seed + args.count - 1, mism,
        ''.join(', %s: %d' % (k, v) for k, v in sorted(kinds.items())), time.time() - start))
    return 1 if mism else 0


if __name__ == '__main__':
    sys.exit(main())
