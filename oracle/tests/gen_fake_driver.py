#!/usr/bin/env python3
"""A fake scenario driver for test_generate.py: prints a canonical trace in
which every statement observes 'ok', except a statement whose text is the
value of GEN_FAKE_BAD (then it observes 'WRONG' and the exit status is 1).
It checks that the future names a statement uses were defined before
(exit 2 otherwise), so that a shrinker must keep the definitions.
Options: --pool P, --timeout S, --trace-only, --quiet are accepted."""
import os
import re
import sys

bad = os.environ.get('GEN_FAKE_BAD')
args = [a for a in sys.argv[1:]]
pool = 'thread'
files = []
i = 0
while i < len(args):
    a = args[i]
    if a in ('--pool', '--timeout'):
        if a == '--pool':
            pool = args[i + 1]
        i += 2
        continue
    if a.startswith('--'):
        i += 1
        continue
    files.append(a)
    i += 1
rc = 0
for path in files:
    print('# %s on %s' % (path, pool))
    defined = set()
    body = False
    for n, ln in enumerate(open(path, encoding='utf-8'), 1):
        s = ln.split('#', 1)[0].strip() if not ln.strip().startswith('#') else ''
        if not s:
            continue
        if not body and re.match(r'^[a-z]+:', s):
            continue
        body = True
        stmt = s.split(' => ', 1)[0].strip()
        words = stmt.split()
        if words[0] in ('future', 'submit'):
            defined.add(words[1])
        elif words[0] in ('result', 'set_result', 'cancel', 'done') and words[1] not in defined:
            sys.stderr.write('%s:%d:1: undefined future %s\n' % (path, n, words[1]))
            sys.exit(2)
        obs = 'WRONG' if stmt == bad else 'ok'
        if obs == 'WRONG':
            rc = 1
        print('%d: %s => %s' % (n, stmt, obs))
    print('# end')
sys.exit(rc)
