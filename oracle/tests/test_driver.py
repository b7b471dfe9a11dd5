"""The oracle's driver end to end: exit statuses, messages, the watchdog,
deadlocks, version gating, --executor, allowed differences, trace_diff."""

import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
import unittest

TESTS = os.path.dirname(os.path.abspath(__file__))
ORACLE = os.path.dirname(TESTS)
SCEN = os.path.join(TESTS, 'scenarios')
DRIVER = os.path.join(ORACLE, 'scenario.py')
TRACE_DIFF = os.path.join(ORACLE, 'trace_diff.py')
NO_TABLE = os.path.join(TESTS, 'no-such-table.tsv')

sys.path.insert(0, ORACLE)
import lang  # noqa: E402
import scenario  # noqa: E402
import trace_diff  # noqa: E402


def run(*args, cwd=TESTS, table=NO_TABLE):
    cmd = [sys.executable, DRIVER, '--allowed-differences', table] + \
        list(args)
    p = subprocess.run(cmd, cwd=cwd, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=120)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


class Driver(unittest.TestCase):
    def test_passes_on_both_pools(self):
        rc, out, err = run('scenarios/passes.scenario')
        self.assertEqual(rc, 0, out + err)
        self.assertIn('PASS scenarios/passes.scenario on thread\n', out)
        self.assertIn('PASS scenarios/passes.scenario on process\n', out)
        self.assertIn('2 runs: 2 passed, 0 failed, 0 skipped, 0 not '
                      'applicable; 24 expectations confirmed, 0 unconfirmed, '
                      '0 allowed differences', out)

    def test_pool_option(self):
        rc, out, err = run('--pool', 'process', 'scenarios/passes.scenario')
        self.assertEqual(rc, 0, out + err)
        self.assertNotIn('on thread', out)
        self.assertIn('1 runs: 1 passed', out)

    def test_expectation_failure_exits_1(self):
        rc, out, err = run('scenarios/fails.scenario')
        self.assertEqual(rc, 1, out + err)
        self.assertIn('scenarios/fails.scenario:7: expected 2, got 1\n', out)
        self.assertIn('FAIL scenarios/fails.scenario on thread\n', out)
        self.assertIn('1 expectations confirmed', out)

    def test_quiet(self):
        rc, out, err = run('--quiet', 'scenarios/passes.scenario',
                           'scenarios/fails.scenario')
        self.assertEqual(rc, 1)
        self.assertNotIn('PASS', out)
        self.assertIn('FAIL scenarios/fails.scenario on thread', out)

    def test_hang_is_caught_naming_the_line(self):
        t0 = time.monotonic()
        rc, out, err = run('--timeout', '2', 'scenarios/hangs.scenario')
        self.assertLess(time.monotonic() - t0, 30)
        self.assertEqual(rc, 1, out + err)
        self.assertIn('scenarios/hangs.scenario:7: hung at: result a\n', out)

    def test_malformed_file_runs_nothing(self):
        d = tempfile.mkdtemp()
        try:
            with open(os.path.join(d, 'bad.scenario'), 'w') as f:
                f.write('clauses: a.b\nfuture f\nfrob f\n')
            rc, out, err = run('scenarios/passes.scenario',
                               os.path.join(d, 'bad.scenario'))
            self.assertEqual(rc, 2)
            self.assertEqual(err, "%s:3:1: unknown statement 'frob'\n"
                             % os.path.join(d, 'bad.scenario'))
            self.assertEqual(out, '')
        finally:
            shutil.rmtree(d)

    def test_folder_sorted_and_missing_path(self):
        rc, out, err = run('--trace-only', 'scenarios/nope')
        self.assertEqual(rc, 2)
        self.assertIn('scenarios/nope: no such file or folder', err)

    def test_newer_python_is_skipped(self):
        rc, out, err = run('scenarios/newer.scenario')
        self.assertEqual(rc, 0, out + err)
        self.assertIn('SKIP scenarios/newer.scenario on thread: needs Python '
                      '3.99, this is %d.%d' % sys.version_info[:2], out)
        self.assertIn('0 expectations confirmed, 1 unconfirmed', out)

    def test_deadlock_reproduced(self):
        rc, out, err = run('--trace-only', 'scenarios/deadlock.scenario')
        self.assertEqual(rc, 0, out + err)
        self.assertEqual(out, textwrap.dedent('''\
            # scenarios/deadlock.scenario on thread
            6: pool max_workers=1 => ok
            7: submit a "submit 'return 1'" => ok
            # deadlock reproduced {a}
            '''))

    def test_trace(self):
        rc, out, err = run('--trace-only', '--pool', 'thread',
                           'scenarios/passes.scenario')
        self.assertEqual(rc, 0, out + err)
        lines = out.splitlines()
        self.assertEqual(lines[0], '# scenarios/passes.scenario on thread')
        self.assertEqual(lines[-1], '# end')
        self.assertIn('8: result f => "it\'s"', lines)
        self.assertIn("14: result a => b'\\x00'", lines)
        self.assertIn("17: exception b => KeyError 'k'", lines)
        # the type alone: the expectation did not give the message
        self.assertIn('18: result b => raises KeyError', lines)
        self.assertIn('21: rest it => {a b f} stop', lines)

    def test_trace_only_does_not_check(self):
        rc, out, err = run('--trace-only', 'scenarios/fails.scenario')
        self.assertEqual(rc, 0, out + err)
        self.assertIn('7: result f => 1\n', out)

    def test_executor_not_applicable(self):
        rc, out, err = run('--executor', 'executors:inline',
                           'scenarios/prefix.scenario',
                           'scenarios/fails.scenario')
        self.assertEqual(rc, 1, out + err)
        self.assertIn('N/A scenarios/prefix.scenario on thread: not '
                      'applicable: the executor does not take '
                      'thread_name_prefix\n', out)
        self.assertIn('scenarios/fails.scenario:7: expected 2, got 1', out)

    def test_process_that_dies_is_reported(self):
        rc, out, err = run('--executor', 'executors:suicidal',
                           'scenarios/dies.scenario')
        self.assertEqual(rc, 1, out + err)
        self.assertIn('scenarios/dies.scenario:7: the scenario process died '
                      '(killed by SIGKILL) at: submit a "return 1"\n', out)


CANCELLED = '''\
clauses: oracle.allowed
pools: thread

future f
future g
cancel f => True
wait [f g] timeout=0 => done {f} not_done {g}
done f => True
'''
HEADER = 'scenario\tpool\tline\tobserved\tissue\treason\n'


class Allowed(unittest.TestCase):
    def setUp(self):
        self.d = tempfile.mkdtemp()
        self.path = os.path.join(self.d, 'cancelled.scenario')
        with open(self.path, 'w') as f:
            f.write(CANCELLED)
        self.table = os.path.join(self.d, 'table.tsv')

    def tearDown(self):
        shutil.rmtree(self.d)

    def table_rows(self, *rows):
        with open(self.table, 'w') as f:
            f.write('# a comment\n' + HEADER)
            for r in rows:
                f.write('\t'.join(r) + '\n')

    def test_without_entry_the_difference_fails(self):
        self.table_rows()
        rc, out, err = run(self.path, table=self.table)
        self.assertEqual(rc, 1, out + err)
        self.assertIn('cancelled.scenario:7: expected done {f} not_done {g}, '
                      'got done {} not_done {f g}', out)

    def test_entry_allows_the_difference(self):
        self.table_rows(('cancelled.scenario', 'thread', '7',
                         'done {} not_done {f g}', 'gh-92001', 'why'))
        rc, out, err = run(self.path, table=self.table)
        self.assertEqual(rc, 0, out + err)
        self.assertIn('cancelled.scenario:7: allowed difference (gh-92001): '
                      'expected done {f} not_done {g}, CPython observes done '
                      '{} not_done {f g}', out)
        self.assertIn('2 expectations confirmed, 0 unconfirmed, 1 allowed '
                      'differences', out)
        rc, out, err = run('--trace-only', self.path, table=self.table)
        self.assertIn('7: wait [f g] timeout=0 => done {} not_done {f g}\n',
                      out)

    def test_stale_entry_fails(self):
        self.table_rows(('cancelled.scenario', 'both', '8', 'False',
                         'gh-1', 'why'))
        rc, out, err = run(self.path, table=self.table)
        self.assertEqual(rc, 1, out + err)
        self.assertIn('cancelled.scenario:8: CPython changed: line 8 now '
                      'observes the documented True; the allowed-differences '
                      'entry (gh-1, ', out)

    def test_entry_with_another_observation_fails(self):
        self.table_rows(('cancelled.scenario', 'thread', '7',
                         'done {g} not_done {f}', 'gh-92001', 'why'))
        rc, out, err = run(self.path, table=self.table)
        self.assertEqual(rc, 1, out + err)
        self.assertIn('cancelled.scenario:7: CPython changed: expected done '
                      '{f} not_done {g} (as documented), allowed-differences '
                      'says CPython observes done {g} not_done {f} (gh-92001), '
                      'got done {} not_done {f g}', out)

    def test_entry_for_the_other_pool_does_not_apply(self):
        self.table_rows(('cancelled.scenario', 'process', '7',
                         'done {} not_done {f g}', 'gh-92001', 'why'))
        rc, out, err = run(self.path, table=self.table)
        self.assertEqual(rc, 1, out + err)

    def test_malformed_table(self):
        self.table_rows(('cancelled.scenario', 'thread', 'seven', 'x',
                         'gh-1', 'why'))
        rc, out, err = run(self.path, table=self.table)
        self.assertEqual(rc, 2)
        self.assertIn('table.tsv:3: line must be a line number', err)
        with open(self.table, 'w') as f:
            f.write('scenario\tpool\n')
        rc, out, err = run(self.path, table=self.table)
        self.assertEqual(rc, 2)
        self.assertIn('table.tsv:1: the first row must be the header', err)

    def test_the_shipped_table_loads(self):
        t = scenario.AllowedDifferences.load(scenario.DEFAULT_ALLOWED)
        self.assertTrue(t.entries)
        for e in t.entries:
            path = os.path.join(scenario.SCENARIOS_ROOT, e.scenario)
            self.assertTrue(os.path.exists(path), e.scenario)
            sc = lang.parse_file(path)
            self.assertIn(e.line, sc.by_line(), e.where)
            if e.pool != 'both':
                self.assertIn(e.pool, sc.pool_list(), e.where)


class TraceDiff(unittest.TestCase):
    def setUp(self):
        self.table = scenario.AllowedDifferences(
            os.path.join(SCEN, 't.tsv'))
        self.table.entries = [
            scenario.Entry('a.scenario', 'thread', 5,
                           ['done', '{}', 'not_done', '{f}'], 'gh-1', 'r', 'x'),
            scenario.Entry('a.scenario', 'both', 9, scenario.HUNG, 'gh-2',
                           'r', 'x')]
        self.path = os.path.join(SCEN, 'a.scenario')
        self.c = ['# a on thread', '4: cancel f => True',
                  '5: wait [f] => done {f} not_done {}', '9: rest m => 1 stop',
                  '# end']

    def test_same(self):
        self.assertEqual(trace_diff.compare(self.path, 'thread', self.c,
                                            list(self.c), self.table),
                         (True, []))

    def test_allowed_line(self):
        py = list(self.c)
        py[2] = '5: wait [f] => done {} not_done {f}'
        ok, notes = trace_diff.compare(self.path, 'thread', self.c, py,
                                       self.table)
        self.assertTrue(ok)
        self.assertEqual(len(notes), 1)
        self.assertFalse(trace_diff.compare(self.path, 'process', self.c, py,
                                            self.table)[0])
        py[2] = '5: wait [f] => done {} not_done {g}'
        self.assertFalse(trace_diff.compare(self.path, 'thread', self.c, py,
                                            self.table)[0])

    def test_python_side_must_show_the_entry(self):
        c = list(self.c)
        c[2] = '5: wait [f] => done {} not_done {f}'
        self.assertFalse(trace_diff.compare(self.path, 'thread', c, self.c,
                                            self.table)[0])

    def test_hung_entry(self):
        py = self.c[:3] + ['# hung at line 9']
        self.assertTrue(trace_diff.compare(self.path, 'process', self.c, py,
                                           self.table)[0])
        py = self.c[:2] + ['# hung at line 5']
        self.assertFalse(trace_diff.compare(self.path, 'thread', self.c, py,
                                            self.table)[0])

    def test_missing_line_fails(self):
        self.assertFalse(trace_diff.compare(self.path, 'thread', self.c,
                                            self.c[:-1], self.table)[0])

    def test_end_to_end_with_a_fake_driver(self):
        d = tempfile.mkdtemp()
        try:
            fake = os.path.join(d, 'fake-driver')
            with open(fake, 'w') as f:
                f.write('#!/bin/sh\n'
                        'exec %s %s --allowed-differences %s "$@" | '
                        "sed 's/=> True$/=> False/'\n"
                        % (sys.executable, DRIVER, NO_TABLE))
            os.chmod(fake, 0o755)
            p = subprocess.run([sys.executable, TRACE_DIFF, '--driver', fake,
                                '--allowed-differences', NO_TABLE,
                                os.path.join(SCEN, 'passes.scenario')],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               timeout=120)
            out = p.stdout.decode()
            self.assertEqual(p.returncode, 1, out)
            self.assertIn('DIFFERENT: %s on thread' % os.path.join(
                SCEN, 'passes.scenario'), out)
            self.assertIn('-11: running a => False\n+11: running a => True',
                          out)
            p = subprocess.run([sys.executable, TRACE_DIFF, '--driver', DRIVER,
                                '--allowed-differences', NO_TABLE, '-j', '2',
                                os.path.join(SCEN, 'passes.scenario')],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               timeout=120)
            self.assertEqual(p.returncode, 0, p.stdout.decode())
            self.assertIn('2 runs: 2 with the same trace, 0 different',
                          p.stdout.decode())
        finally:
            shutil.rmtree(d)


if __name__ == '__main__':
    unittest.main()
