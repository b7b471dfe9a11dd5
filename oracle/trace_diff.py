#!/usr/bin/env python3
"""Runs the C scenario driver and the Python oracle with --trace-only on
every scenario given and each pool it allows, and diffs the traces line by
line.

    python3 oracle/trace_diff.py --driver build/plain/conformance/driver/cf-scenario \\
        conformance/scenarios

A differing line is allowed only where oracle/allowed-differences.tsv has an
entry for that scenario, pool and line and the Python side shows the entry's
observed text (an entry '# hung' allows the Python trace to stop there with
'# hung at line N'). Every other difference fails and is printed as a
unified diff. Exit status 0 (the traces agree), 1 (they differ, or a driver
failed), 2 (bad command line or a malformed scenario).
"""

import argparse
import difflib
import os
import re
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import lang  # noqa: E402
import scenario  # noqa: E402

_LINE = re.compile(r'([0-9]+): (.*?) => (.*)\Z')
_HUNG = re.compile(r'# hung at line ([0-9]+)\Z')
_TRACE = re.compile(r'(# |[0-9]+: )')


def trace_lines(text):
    """The lines of a driver's output that belong to traces (a driver may
    print PASS/FAIL lines and a summary on stdout too)."""
    return [l for l in text.splitlines() if _TRACE.match(l)]


def run_driver(cmd, timeout):
    try:
        p = subprocess.run(cmd, stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=timeout)
    except subprocess.TimeoutExpired as e:
        out = e.stdout or b''
        return out.decode('utf-8', 'replace'), 'timed out after %g s' % \
            timeout, None
    except OSError as e:
        return '', str(e), None
    return (p.stdout.decode('utf-8', 'replace'),
            p.stderr.decode('utf-8', 'replace'), p.returncode)


def compare(path, pool, c_lines, py_lines, allowed):
    """(ok, notes): the traces agree, allowing the differences the table
    covers. notes: the allowed differences used."""
    notes = []
    n = max(len(c_lines), len(py_lines))
    for i in range(n):
        c = c_lines[i] if i < len(c_lines) else None
        p = py_lines[i] if i < len(py_lines) else None
        if c == p:
            continue
        if p is not None:
            h = _HUNG.match(p)
            if h and i == len(py_lines) - 1:
                line = int(h.group(1))
                e = allowed.lookup(path, pool, line)
                cm = _LINE.match(c) if c is not None else None
                if e is not None and e.observed == scenario.HUNG and \
                        cm and int(cm.group(1)) == line:
                    notes.append('line %d: CPython hangs (%s)' % (line,
                                                                 e.issue))
                    return True, notes
                return False, notes
        cm = _LINE.match(c) if c is not None else None
        pm = _LINE.match(p) if p is not None else None
        if not (cm and pm and cm.group(1) == pm.group(1)
                and cm.group(2) == pm.group(2)):
            return False, notes
        line = int(pm.group(1))
        e = allowed.lookup(path, pool, line)
        if e is None or pm.group(3) != ' '.join(e.observed):
            return False, notes
        notes.append('line %d: C %s, CPython %s (%s)' % (
            line, cm.group(3), pm.group(3), e.issue))
    return True, notes


def main(argv=None):
    ap = argparse.ArgumentParser(
        prog='trace_diff.py',
        description='Diffs the traces of the C scenario driver and of the '
        'Python oracle, scenario by scenario and pool by pool.')
    ap.add_argument('paths', nargs='+', metavar='FILE_OR_FOLDER')
    ap.add_argument('--driver', required=True,
                    help='the C driver (cf-scenario)')
    ap.add_argument('--pool', choices=('thread', 'process'))
    ap.add_argument('-j', '--jobs', type=int, default=os.cpu_count() or 1,
                    metavar='N', help='scenario runs at a time (default: '
                    'the number of CPUs)')
    ap.add_argument('--timeout', type=float, default=60.0, metavar='S',
                    help="each driver's watchdog limit per run (default 60)")
    ap.add_argument('--allowed-differences', default=scenario.DEFAULT_ALLOWED,
                    metavar='TSV')
    ap.add_argument('--python-driver',
                    default=os.path.join(HERE, 'scenario.py'),
                    help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if not os.path.exists(args.driver):
        print('trace_diff.py: no driver %s' % args.driver, file=sys.stderr)
        return 2
    try:
        files = scenario.collect(args.paths)
    except FileNotFoundError as e:
        print('%s: no such file or folder' % e.args[0], file=sys.stderr)
        return 2
    scs, errors = scenario.parse_all(files)
    if errors:
        for e in errors:
            print(e, file=sys.stderr)
        return 2
    try:
        allowed = scenario.AllowedDifferences.load(args.allowed_differences)
    except ValueError as e:
        print(e, file=sys.stderr)
        return 2
    # a scenario newer than this interpreter has no CPython trace to diff:
    # its expectations are unconfirmed (scenario.py counts them)
    newer = [sc for sc in scs if sc.python > lang.running_python()]
    jobs = [(sc, pool) for sc in scs if sc not in newer
            for pool in sc.pool_list() if args.pool in (None, pool)]
    total = len(jobs)
    lock = threading.Lock()
    done = [0]
    limit = args.timeout * 2 + 30

    def one(job):
        sc, pool = job
        common = ['--trace-only', '--pool', pool, '--timeout',
                  '%g' % args.timeout]
        c_out, c_err, c_rc = run_driver(
            [args.driver] + common + [sc.path], limit)
        py_out, py_err, py_rc = run_driver(
            [sys.executable, args.python_driver] + common +
            ['--allowed-differences', args.allowed_differences, sc.path],
            limit)
        c_lines = trace_lines(c_out)
        py_lines = trace_lines(py_out)
        ok, notes = compare(sc.path, pool, c_lines, py_lines, allowed)
        if not c_lines or not py_lines:
            ok = False
        res = dict(sc=sc, pool=pool, ok=ok, notes=notes, c_lines=c_lines,
                   py_lines=py_lines, c_err=c_err, py_err=py_err,
                   c_rc=c_rc, py_rc=py_rc)
        with lock:
            done[0] += 1
            status = 'same' if ok and not notes else \
                'allowed' if ok else 'DIFFERENT'
            print('[%d/%d] %s on %s: %s' % (done[0], total, sc.path, pool,
                                            status), flush=True)
        return res

    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as ex:
        results = list(ex.map(one, jobs))
    bad = 0
    nallowed = 0
    for r in results:
        label = '%s on %s' % (r['sc'].path, r['pool'])
        for n in r['notes']:
            print('%s: allowed difference, %s' % (label, n))
            nallowed += 1
        if r['ok']:
            continue
        bad += 1
        print('\nDIFFERENT: %s' % label)
        diff = difflib.unified_diff(r['c_lines'], r['py_lines'],
                                    fromfile='C driver', tofile='CPython',
                                    lineterm='')
        for line in diff:
            print(line)
        for who, err, rc in (('C driver', r['c_err'], r['c_rc']),
                             ('CPython', r['py_err'], r['py_rc'])):
            text = err.strip()
            if text:
                print('--- %s stderr (status %s):' % (who, rc))
                for line in text.split('\n')[-15:]:
                    print('  | ' + line)
    for sc in newer:
        print('%s: not diffed: needs Python %s, this is %s' % (
            sc.path, lang.version_text(sc.python),
            lang.version_text(lang.running_python())))
    print('\n%d runs: %d with the same trace, %d different; %d allowed '
          'differences; %d scenarios not diffed (newer than this Python)' % (
              total, total - bad, bad, nallowed, len(newer)))
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())
