"""The oracle's parser accepts and rejects what conformance/SCENARIOS.md
describes, with these exact messages."""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import lang  # noqa: E402

H = 'clauses: a.b\n'


def parse(text):
    return lang.parse_scenario('f.scenario', text)


class Rejects(unittest.TestCase):
    def check(self, text, where_msg):
        with self.assertRaises(lang.FileError) as cm:
            parse(text)
        e = cm.exception
        self.assertEqual('%d:%d: %s' % (e.line, e.col, e.msg), where_msg)
        self.assertEqual(str(e), 'f.scenario:' + where_msg)

    def test_headers(self):
        self.check('', "1:1: the header needs 'clauses:'")
        self.check('pools: thread\n', "1:1: the header needs 'clauses:'")
        self.check(H + 'foo: x\n', "2:1: unknown header key 'foo' (clauses, "
                   'pools, python, deadlock)')
        self.check(H + 'future f\npools: thread\n', "3:1: 'pools:' is a "
                   'header: headers come before the first statement')
        self.check(H + 'clauses: c.d\n', "2:1: 'clauses:' is given twice")
        self.check('clauses: ab\n', "1:10: 'ab' is not a clause id (lowercase "
                   "words of a-z0-9- joined by '.', at least two)")
        self.check('clauses: a.b c.D\n', "1:14: 'c.D' is not a clause id "
                   "(lowercase words of a-z0-9- joined by '.', at least two)")
        self.check('clauses:\n', "1:9: 'clauses:' needs a value")
        self.check(H + 'pools: all\n', "2:8: 'pools:' is thread, process or "
                   'both')
        self.check(H + 'python: 3\n', "2:9: 'python:' is a version 3.N")
        self.check(H + 'deadlock: a\npool\n', "2:11: deadlock: 'a' is not a "
                   'future of this scenario')

    def test_names(self):
        self.check(H + 'frob f\n', "2:1: unknown statement 'frob'")
        self.check(H + 'future F\n', '2:8: a future must be a name '
                   "([a-z_][a-z0-9_]*), not 'F'")
        self.check(H + 'future ' + 'a' * 32 + '\n', "2:8: the name '%s' is "
                   'longer than 31 characters' % ('a' * 32))
        self.check(H + 'future f\nfuture f\n', "3:8: 'f' is already defined")
        self.check(H + 'cancel f\n', "2:8: 'f' is not defined")
        self.check(H + 'future f\nnext f\n', "3:6: 'f' is a future, not an "
                   'iterator')
        self.check(H + 'future f\nas_completed i [f]\nclose i\n', "4:7: 'i' is "
                   'an as_completed iterator: close is for map iterators')
        self.check(H + 'pools: thread\npool\nsubmit a "result b"\n',
                   "4:11: 'b' is not a future of this scenario")

    def test_arguments(self):
        self.check(H + 'future f g\n', "2:10: 'future' takes 1 argument, "
                   'this is one too many')
        self.check(H + 'future\n', "2:7: 'future' takes 1 argument")
        self.check(H + 'future f\nresult f timeout=0.1 x\n',
                   '3:22: a positional argument after the options')
        self.check(H + 'future f\ncallback f cb raise\n', "3:15: the third "
                   "argument of 'callback' can only be 'raises'")
        self.check(H + 'future f\nwait [f first_completed\n',
                   "3:6: a list is not closed: ']' is missing")
        self.check(H + 'future f\nwait f\n', '3:6: a list [F ...] was '
                   'expected here')
        self.check(H + 'future f\nwait [f] sometimes\n', '3:10: wait takes '
                   'all, first_completed or first_exception here')
        self.check(H + 'future f\nset_exception f Foo "m"\n', '3:17: '
                   'set_exception needs one of the raisable types (ValueError, '
                   'KeyError, RuntimeError, ... see SCENARIOS.md)')
        self.check(H + "future f\nset_exception f ValueError 'm'\n",
                   '3:28: set_exception needs a message "MESSAGE"')
        self.check(H + 'future f\nresult f =>\n',
                   "3:12: '=>' needs an expectation after it")
        self.check(H + 'pool\nsubmit a "return 1"x\n',
                   '3:20: a blank must follow here')

    def test_options(self):
        self.check(H + 'pool frob=1\n', "2:6: 'pool' has no option 'frob'")
        self.check(H + 'pool max_workers=1 max_workers=2\n',
                   "2:20: the option 'max_workers' is given twice")
        self.check(H + 'pool max_workers=x\n',
                   '2:18: max_workers needs an integer or None')
        self.check(H + 'pool\nshutdown cancel_futures=True\n', "3:10: "
                   "cancel_futures needs 'python: 3.9' (or later) in the header")
        self.check(H + 'python: 3.11\npool max_tasks_per_child=1\n',
                   "3:6: max_tasks_per_child is for a scenario with "
                   "'pools: process'")
        self.check(H + 'pool thread_name_prefix="w"\n', "2:6: "
                   "thread_name_prefix is for a scenario with 'pools: thread'")
        self.check(H + 'pool\nmap m ["return 1"] buffersize=2\n', "3:20: "
                   "buffersize needs 'python: 3.14' (or later) in the header")

    def test_pool_rules(self):
        self.check(H + 'submit a "return 1"\n', "2:1: there is no pool yet: "
                   "'pool' or 'with' comes first")
        self.check(H + 'pool\npool\n', '3:1: a scenario makes at most one pool')
        self.check(H + 'end\n', "2:1: 'end' closes a 'with', and there is "
                   'none')
        self.check(H + 'with\nend\nend\n', "4:1: 'end' is given twice")
        self.check(H + 'with\nend\nsubmit a "return 1"\n', "4:1: the pool is "
                   "used after 'end' (only a submit or map expecting the error "
                   'may follow)')
        self.check(H + 'with\nend\nshutdown\n', "4:1: the pool is used after "
                   "'end' (only a submit or map expecting the error may "
                   'follow)')

    def test_values(self):
        self.check(H + 'future f\nset_result f "open\n',
                   '3:14: a string is not closed')
        self.check(H + 'future f\nset_result f "a\\qb"\n',
                   "3:16: unknown escape (use \\\\, \\', \\\", \\n, \\t, \\r "
                   'or \\xNN)')
        self.check(H + 'future f\nset_result f "\\x00"\n',
                   '3:14: a str must not hold a NUL character')
        self.check(H + 'future f\nset_result f "\\x4"\n',
                   '3:15: \\x needs two hexadecimal digits')
        self.check(H + 'future f\nset_result f b"\u00e9"\n',
                   '3:16: bytes can only hold ASCII characters (use \\xNN)')
        self.check(H + 'future f\nset_result f 9223372036854775808\n',
                   '3:14: the integer does not fit in 64 bits')
        self.check(H + 'future f\nset_result f 007\n', "3:14: '007' is not a "
                   'value (None, True, False, an integer, a float, a string or '
                   'bytes)')
        self.check(H + 'future f\nset_result f none\n', "3:14: 'none' is not "
                   'a value (None, True, False, an integer, a float, a string '
                   'or bytes)')
        with self.assertRaises(lang.FileError) as cm:
            parse(b'clauses: a.b\nfuture \xff\n')
        self.assertEqual(str(cm.exception),
                         'f.scenario:2:8: the file is not valid UTF-8')

    def test_programs(self):
        P = H + 'pool\nsubmit a "%s"\n'
        self.check(P % 'return 1; open g', '3:21: this statement is never '
                   'run: the one before it ends the task')
        self.check(P % 'wait g;', "3:17: a ';' ends the program: a statement "
                   'must follow it')
        self.check(P % 'open g;;open h', '3:18: an empty statement in a task '
                   'program')
        self.check(P % 'thread_name', "3:11: 'thread_name' is for thread "
                   'pools, and this scenario runs on both pools (pools: both)')
        self.check(P % 'exit 3', "3:11: 'exit' is for process pools, and this "
                   'scenario runs on both pools (pools: both)')
        self.check(P % "raise Foo 'x'", '3:17: raise needs one of the '
                   'raisable types (ValueError, KeyError, RuntimeError, ... see '
                   'SCENARIOS.md)')
        self.check(P % 'raise ValueError', "3:16: 'raise' takes 2 arguments, "
                   'not 1')
        self.check(P % "submit 'return \\'x\\''", "3:26: the program of a "
                   "task's submit has no strings")
        self.check(P % 'spin -1', "3:16: spin's count must be an integer from "
                   '0 to 9223372036854775807')
        self.check(P % 'kill SIGINT', '3:16: kill needs SIGKILL, SIGTERM, '
                   'SIGSEGV or SIGABRT')
        self.check(P % 'frob', "3:11: unknown task statement 'frob'")
        self.check(H + "pool\nsubmit a 'return 1'\n",
                   '3:10: a task program is a double-quoted string')
        self.check(H + 'pool\nmap m ["return 1" x]\n',
                   '3:19: a task program is a double-quoted string')
        self.check(H + 'pool initializer="exit 1"\n', "2:19: 'exit' is for "
                   'process pools, and this scenario runs on both pools (pools: '
                   'both)')


class Accepts(unittest.TestCase):
    def test_minimal(self):
        sc = parse(H)
        self.assertEqual(sc.clauses, ['a.b'])
        self.assertEqual(sc.pools, 'both')
        self.assertEqual(sc.python, (3, 2))
        self.assertEqual(sc.statements, [])

    def test_statement_text_and_expectation(self):
        sc = parse(H + 'future f   # made by hand\n'
                   '  set_result f "it\'s"  =>  ok   # a comment\n'
                   "result f=>'it\\'s'\n"
                   'set_result f 1 => raises  InvalidStateError\n')
        st = sc.statements
        self.assertEqual([s.text for s in st], [
            'future f', 'set_result f "it\'s"', 'result f',
            'set_result f 1'])
        self.assertEqual(st[1].args['value'], "it's")
        self.assertIsNone(st[0].expect)
        self.assertEqual(st[1].expect, ['ok'])
        self.assertEqual(st[2].expect, ['"it\'s"'])
        self.assertEqual(st[3].expect_text, 'raises InvalidStateError')
        self.assertEqual(st[1].col, 3)

    def test_programs_are_raw(self):
        # Escapes of a task program are those of its single-quoted strings.
        sc = parse(H + 'pool\nsubmit a "return b\'\\x00\\xff\'"\n'
                   'submit b "return \'caf\u00e9 \\n\'"\n')
        p = [s.args['program'] for s in sc.statements[1:]]
        self.assertEqual(p, ["return b'\\x00\\xff'", "return 'caf\u00e9 \\n'"])
        self.assertEqual(lang.parse_program(p[0])[0].arg, b'\x00\xff')
        self.assertEqual(lang.parse_program(p[1])[0].arg, 'caf\u00e9 \n')

    def test_everything(self):
        sc = parse('clauses: a.b c-d.e2\npools: thread\npython: 3.9\n'
                   'deadlock: a\n\n'
                   'with max_workers=None initializer="open i" '
                   'thread_name_prefix=\'p\'\n'
                   'submit a "wait g; open h; spin 10; sleep 0.5; result a"\n'
                   'future f\nset_running f => True\n'
                   'set_exception f OSError "e\\tx" => ok\n'
                   'callback f cb raises\ncallbacks => cb(f) adder\n'
                   'wait [f a f] first_exception timeout=None\n'
                   'as_completed it [] timeout=-1\nnext it\nrest it\n'
                   'map m ["calls" "thread_name"] timeout=1e3 chunksize=-1\n'
                   'close m\nopen g\nawait h\nshutdown wait=False '
                   'cancel_futures=True\nend\n'
                   'submit z "return 1" => raises RuntimeError\n')
        self.assertEqual(sc.clauses, ['a.b', 'c-d.e2'])
        self.assertEqual(sc.deadlock, ['a'])
        self.assertEqual(sc.gates, {'i', 'g', 'h'})
        st = dict((s.verb, s) for s in sc.statements)
        self.assertEqual(st['with'].args['thread_name_prefix'], 'p')
        self.assertIsNone(st['with'].args['max_workers'])
        self.assertEqual(st['callbacks'].args['count'], 1)
        self.assertEqual(st['wait'].args, {'names': ['f', 'a', 'f'],
                                           'return_when': 'FIRST_EXCEPTION',
                                           'timeout': None})
        self.assertEqual(st['map'].args['timeout'], 1000.0)
        self.assertEqual(st['map'].args['chunksize'], -1)
        self.assertEqual(st['shutdown'].args, {'wait': False,
                                               'cancel_futures': True})
        self.assertEqual(st['set_exception'].args['message'], 'e\tx')

    def test_values(self):
        for word, value in (('None', None), ('True', True), ('-3', -3),
                            ('0', 0), ('1.5', 1.5), ('-0.25', -0.25),
                            ('1e3', 1000.0), ('1.', 1.0), ('.5', 0.5),
                            ('-9223372036854775808', -2 ** 63)):
            sc = parse(H + 'future f\nset_result f %s\n' % word)
            v = sc.statements[1].args['value']
            self.assertEqual((type(v), v), (type(value), value), word)

    def test_header_comment_and_blanks(self):
        sc = parse('  clauses:a.b   # why\n\t# only a comment\npools:  process\n')
        self.assertEqual(sc.clauses, ['a.b'])
        self.assertEqual(sc.pools, 'process')

    def test_every_conformance_scenario_parses(self):
        root = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
            os.path.abspath(__file__)))), 'conformance', 'scenarios')
        n = 0
        for dirpath, _, files in os.walk(root):
            for f in files:
                if f.endswith('.scenario'):
                    lang.parse_file(os.path.join(dirpath, f))
                    n += 1
        if n == 0:
            self.skipTest('no conformance scenarios yet')


class Canonical(unittest.TestCase):
    def test_tokens(self):
        c = lang.canonical_tokens
        self.assertEqual(c('raises  ValueError "boom"'),
                         ['raises', 'ValueError', "'boom'"])
        self.assertEqual(c("'it\\'s'"), ['"it\'s"'])
        self.assertEqual(c('b"\\x00a"'), ["b'\\x00a'"])
        self.assertEqual(c("'caf\u00e9 \\n' # comment"), ["'caf\u00e9 \\n'"])
        self.assertEqual(c('done {a b}   not_done {}'),
                         ['done', '{a', 'b}', 'not_done', '{}'])
        self.assertEqual(c('cb(f) adder, cb(g) other'),
                         ['cb(f)', 'adder,', 'cb(g)', 'other'])
        with self.assertRaises(lang.ParseError):
            c("x'y'")

    def test_match(self):
        m = lang.match
        obs = ['raises', 'BrokenProcessPool', "'A child process died'"]
        self.assertEqual(m(obs, obs), (True, obs))
        self.assertEqual(m(['raises', 'BrokenProcessPool'], obs),
                         (True, ['raises', 'BrokenProcessPool']))
        self.assertEqual(m(['raises'], obs), (False, obs))
        self.assertEqual(m(['raises', 'RuntimeError'], obs), (False, obs))
        self.assertEqual(m(['1'], ['1.0']), (False, ['1.0']))
        self.assertEqual(m(['True'], ['1']), (False, ['1']))
        rest = ['{a}', 'raises', 'TimeoutError', "'1 (of 2) futures unfinished'"]
        self.assertEqual(m(['{a}', 'raises', 'TimeoutError'], rest)[0], True)
        # a str value after a value is not an error message
        self.assertEqual(m(['1'], ['1', "'x'"])[0], False)
        self.assertEqual(m(['None'], ['None', "'x'"])[0], False)

    def test_error_tokens(self):
        sys.path.insert(0, os.path.dirname(os.path.dirname(
            os.path.abspath(__file__))))
        import scenario
        self.assertEqual(scenario.error_tokens(KeyError('k')),
                         ['KeyError', "'k'"])
        self.assertEqual(scenario.error_tokens(TimeoutError()),
                         ['TimeoutError', "''"])
        self.assertEqual(scenario.error_tokens(ValueError(1, 'two')),
                         ['ValueError', '"(1, \'two\')"'])
        self.assertEqual(scenario.error_tokens(ValueError("it's")),
                         ['ValueError', '"it\'s"'])


if __name__ == '__main__':
    unittest.main()
