"""Tests of the differential scenario generator (oracle/generate.py).

Run: python3 -m unittest discover -s oracle/tests -p 'test_generate.py'
"""
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ORACLE = os.path.dirname(HERE)
sys.path.insert(0, ORACLE)

import generate  # noqa: E402
from generate_scen import generate as gen_text  # noqa: E402

FAKE = os.path.join(HERE, 'gen_fake_driver.py')
PY_DRIVER = os.path.join(ORACLE, 'scenario.py')


class SameSeedSameText(unittest.TestCase):
    def test_same_seed_same_text(self):
        for seed in (1, 7, 123, 99999):
            self.assertEqual(gen_text(seed), gen_text(seed))

    def test_different_seeds_differ(self):
        self.assertNotEqual(gen_text(1), gen_text(2))

    def test_same_text_in_a_new_interpreter(self):
        code = ('import sys; sys.path.insert(0, %r); from generate_scen import generate;'
                'sys.stdout.write(generate(42))' % ORACLE)
        out = subprocess.run([sys.executable, '-c', code], stdout=subprocess.PIPE,
                             check=True).stdout.decode('utf-8')
        self.assertEqual(out, gen_text(42))

    def test_size_and_header(self):
        for seed in range(1, 60):
            text = gen_text(seed)
            self.assertIn('\nclauses: ', text)
            head, body = generate.split_scenario(text)
            self.assertLessEqual(len(body), 60, seed)


@unittest.skipUnless(os.path.exists(PY_DRIVER), 'the Python driver oracle/scenario.py is missing')
class GeneratedFilesParse(unittest.TestCase):
    def test_fifty_files_parse_and_run(self):
        d = tempfile.mkdtemp(prefix='gen-test-')
        try:
            for seed in range(1000, 1050):
                with open(os.path.join(d, 'gen_%d.scenario' % seed), 'w') as f:
                    f.write(gen_text(seed))
            p = subprocess.run([sys.executable, PY_DRIVER, '--trace-only', '--timeout', '30',
                                '-j', str(os.cpu_count() or 1), d],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            self.assertEqual(p.returncode, 0, p.stderr.decode()[-3000:])
        finally:
            shutil.rmtree(d)


class Shrinker(unittest.TestCase):
    def run_gen(self, bad, seed, extra=()):
        env = dict(os.environ, GEN_FAKE_BAD=bad)
        good = 'env GEN_FAKE_BAD= %s %s' % (sys.executable, FAKE)
        p = subprocess.run([sys.executable, os.path.join(ORACLE, 'generate.py'),
                            '--seed', str(seed), '--count', '1', '-j', '1',
                            '--c-driver', '%s %s' % (sys.executable, FAKE),
                            '--py-driver', good] + list(extra),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        return p.returncode, p.stdout.decode('utf-8')

    def find_statement(self, pred):
        for seed in range(1, 500):
            head, body = generate.split_scenario(gen_text(seed))
            stmts = [b.split(' => ')[0] for b in body]
            for s in stmts:
                if pred(s, stmts) and stmts.count(s) == 1 and len(stmts) >= 8:
                    return seed, s
        self.fail('no such statement')

    def minimal_body(self, out):
        lines = [ln[6:] for ln in out.splitlines() if ln.startswith('    | ')]
        head, body = generate.split_scenario('\n'.join(lines))
        return body

    def test_shrinks_to_the_one_statement(self):
        seed, stmt = self.find_statement(lambda s, _: s.startswith('open '))
        rc, out = self.run_gen(stmt, seed)
        self.assertEqual(rc, 1, out)
        self.assertIn('the C driver differs from CPython', out)
        self.assertEqual([b.split(' => ')[0] for b in self.minimal_body(out)], [stmt], out)

    def test_shrinking_keeps_definitions(self):
        def pred(s, stmts):
            return s.startswith('result ') and ('submit %s ' % s.split()[1]) in ' '.join(stmts)
        seed, stmt = self.find_statement(pred)
        rc, out = self.run_gen(stmt, seed)
        self.assertEqual(rc, 1, out)
        body = [b.split(' => ')[0] for b in self.minimal_body(out)]
        self.assertEqual(len(body), 2, out)
        self.assertTrue(body[0].startswith('submit %s ' % stmt.split()[1]), out)
        self.assertEqual(body[1], stmt)

    def test_no_mismatch_exit_zero(self):
        rc, out = self.run_gen('no such statement', 5)
        self.assertEqual(rc, 0, out)
        self.assertIn('0 mismatching', out)


class Classification(unittest.TestCase):
    def test_kinds(self):
        text = 'clauses: a.b\npools: thread\n\nfuture f => ok\ndone f => True\n'
        tr_ok = ['# x on thread', '4: future f => ok', '5: done f => True', '# end']
        tr_bad = ['# x on thread', '4: future f => ok', '5: done f => False', '# end']
        o = generate.Outcome('thread', (0, tr_ok, ''), (0, tr_ok, ''), text)
        self.assertIsNone(o.kind)
        o = generate.Outcome('thread', (1, tr_bad, ''), (0, tr_ok, ''), text)
        self.assertEqual((o.kind, o.key), ('driver-diff', ('done f', 'False', 'True')))
        o = generate.Outcome('thread', (1, tr_bad, ''), (1, tr_bad, ''), text)
        self.assertEqual((o.kind, o.key), ('model', 'done f'))
        o = generate.Outcome('thread', (2, [], ''), (2, [], ''), text)
        self.assertEqual(o.kind, 'malformed')


if __name__ == '__main__':
    unittest.main()
