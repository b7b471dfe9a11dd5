"""The scenario language of conformance/SCENARIOS.md: lexer, values, task
programs and scenario files.

Standard library only, Python 3.8+. Imported by scenario.py (the driver),
by tasks.py (the task function, also in worker processes) and by the tests.
A malformed file raises FileError, printed as "FILE:LINE:COL: what is wrong";
columns count characters from 1.
"""

import re
import sys

BLANKS = ' \t'
NAME_MAX = 31
RAISABLE = frozenset((
    'ArithmeticError', 'AssertionError', 'AttributeError', 'Exception',
    'IndexError', 'KeyError', 'LookupError', 'NotImplementedError', 'OSError',
    'RuntimeError', 'TypeError', 'ValueError', 'ZeroDivisionError'))
SIGNALS = ('SIGKILL', 'SIGTERM', 'SIGSEGV', 'SIGABRT')
HEADER_KEYS = ('clauses', 'pools', 'python', 'deadlock')
POOLS_VALUES = ('thread', 'process', 'both')
RETURN_WHEN = {'all': 'ALL_COMPLETED', 'first_completed': 'FIRST_COMPLETED',
               'first_exception': 'FIRST_EXCEPTION'}
INT64_MIN, INT64_MAX = -2 ** 63, 2 ** 63 - 1

_NAME = re.compile(r'[a-z_][a-z0-9_]*\Z')
_INT = re.compile(r'-?(?:0+|[1-9][0-9]*)\Z')
_FLOAT = re.compile(r'-?(?:(?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?'
                    r'|[0-9]+[eE][+-]?[0-9]+)\Z')
_CLAUSE = re.compile(r'[a-z0-9-]+(?:\.[a-z0-9-]+)+\Z')
_HEADER = re.compile(r'([A-Za-z_][A-Za-z0-9_-]*):')
_PYTHON = re.compile(r'3\.([0-9]+)\Z')

# Task statements: verb -> number of arguments; which pool they need.
TVERBS = {'return': 1, 'raise': 2, 'wait': 1, 'open': 1, 'spin': 1,
          'sleep': 1, 'calls': 0, 'thread_name': 0, 'result': 1,
          'submit': 1, 'exit': 1, 'kill': 1}
TASK_ENDS = frozenset(('return', 'raise', 'calls', 'thread_name', 'result',
                       'submit', 'exit', 'kill'))
POOL_ONLY = {'thread_name': 'thread', 'result': 'thread',
             'exit': 'process', 'kill': 'process'}


class ParseError(Exception):
    """An error at column col (1-based) of the line being parsed."""

    def __init__(self, col, msg):
        Exception.__init__(self, col, msg)
        self.col = col
        self.msg = msg


class FileError(Exception):
    def __init__(self, path, line, col, msg):
        Exception.__init__(self, '%s:%d:%d: %s' % (path, line, col, msg))
        self.path, self.line, self.col, self.msg = path, line, col, msg


def is_name(word):
    return bool(_NAME.match(word)) and len(word) <= NAME_MAX


def check_name(word, col, what):
    if not _NAME.match(word):
        raise ParseError(col, "%s must be a name ([a-z_][a-z0-9_]*), not '%s'"
                         % (what, word))
    if len(word) > NAME_MAX:
        raise ParseError(col, "the name '%s' is longer than %d characters"
                         % (word, NAME_MAX))
    return word


NOT_A_VALUE = object()


def word_value(word):
    """None/True/False/int/float for a value word, NOT_A_VALUE otherwise;
    raises ValueError for an integer outside 64 bits."""
    if word == 'None':
        return None
    if word == 'True':
        return True
    if word == 'False':
        return False
    if _INT.match(word):
        v = int(word)
        if not INT64_MIN <= v <= INT64_MAX:
            raise ValueError('the integer does not fit in 64 bits')
        return v
    if _FLOAT.match(word):
        return float(word)
    return NOT_A_VALUE


# ---- Tokens ---------------------------------------------------------------

class Tok(object):
    """kind: 'word', 'str', 'bytes', '[', ']', ';', 'option', 'list'.
    col/end: 1-based column of the first character / just past the last.
    str/bytes: quote, raw (the text between the quotes, escapes as
    written), rawcol (column of raw[0]). option: key, val (a Tok).
    list: items (Toks)."""

    def __init__(self, kind, col, end, **kw):
        self.kind, self.col, self.end = kind, col, end
        self.text = kw.get('text')
        self.quote = kw.get('quote')
        self.raw = kw.get('raw')
        self.rawcol = kw.get('rawcol')
        self.key = kw.get('key')
        self.val = kw.get('val')
        self.items = kw.get('items')

    def decoded(self):
        """The value of a str or bytes token (escapes processed)."""
        return decode(self.raw, self.rawcol, self.kind == 'bytes')

    def __repr__(self):
        return 'Tok(%s, %r, col=%d)' % (self.kind, self.text or self.raw,
                                        self.col)


_ESCAPES = {'\\': '\\', "'": "'", '"': '"', 'n': '\n', 't': '\t', 'r': '\r'}
_HEX = '0123456789abcdefABCDEF'


def decode(raw, rawcol, is_bytes):
    out = []
    k = 0
    n = len(raw)
    while k < n:
        c = raw[k]
        if c == '\\':
            e = raw[k + 1] if k + 1 < n else ''
            if e in _ESCAPES and e:
                out.append(_ESCAPES[e])
                k += 2
            elif e == 'x':
                h = raw[k + 2:k + 4]
                if len(h) != 2 or h[0] not in _HEX or h[1] not in _HEX:
                    raise ParseError(rawcol + k,
                                     '\\x needs two hexadecimal digits')
                out.append(chr(int(h, 16)))
                k += 4
            else:
                raise ParseError(rawcol + k, "unknown escape (use \\\\, \\', "
                                 '\\", \\n, \\t, \\r or \\xNN)')
        else:
            if is_bytes and ord(c) >= 0x80:
                raise ParseError(rawcol + k, 'bytes can only hold ASCII '
                                 'characters (use \\xNN)')
            out.append(c)
            k += 1
    text = ''.join(out)
    if is_bytes:
        return text.encode('latin-1')
    if '\0' in text:
        raise ParseError(rawcol - 1, 'a str must not hold a NUL character')
    return text


def _string_starts(s, i):
    return s[i] in '\'"' or (s[i] == 'b' and i + 1 < len(s)
                             and s[i + 1] in '\'"')


def _lex_string(s, i, col0, mode):
    """The string token at s[i] (a quote, or b and a quote)."""
    start = i
    kind = 'str'
    if s[i] == 'b':
        kind = 'bytes'
        i += 1
    q = s[i]
    if mode == 'prog' and q == '"':
        raise ParseError(col0 + start,
                         'strings in a task program are single-quoted')
    j = i + 1
    n = len(s)
    while True:
        if j >= n:
            raise ParseError(col0 + start, 'a string is not closed')
        c = s[j]
        if c == '\\':
            if j + 1 >= n:
                raise ParseError(col0 + start, 'a string is not closed')
            j += 2
            continue
        if c == q:
            break
        j += 1
    return Tok(kind, col0 + start, col0 + j + 1, quote=q, raw=s[i + 1:j],
               rawcol=col0 + i + 1), j + 1


def _ends_word(s, i, mode):
    c = s[i]
    if c in BLANKS or c in '\'"':
        return True
    if mode != 'prog' and c == '#':
        return True
    if mode == 'stmt' and (c in '[]' or s.startswith('=>', i)):
        return True
    if mode == 'prog' and c == ';':
        return True
    return False


def _after_token(s, i, col0, mode):
    """A token must be followed by a blank (or the end, a comment, '=>',
    a ';' in a program)."""
    if i >= len(s):
        return
    c = s[i]
    if c in BLANKS:
        return
    if mode != 'prog' and c == '#':
        return
    if mode == 'stmt' and s.startswith('=>', i):
        return
    if mode == 'stmt' and c == ']':
        return
    if mode == 'prog' and c == ';':
        return
    if c in '\'"':
        raise ParseError(col0 + i, 'a quote inside a word')
    raise ParseError(col0 + i, 'a blank must follow here')


def _lex_word(s, i, col0, mode):
    start = i
    n = len(s)
    while i < n and not _ends_word(s, i, mode):
        if mode == 'stmt' and s[i] == '=':
            key = s[start:i]
            i += 1
            if i < n and _string_starts(s, i):
                val, i = _lex_string(s, i, col0, mode)
            else:
                vs = i
                while i < n and not _ends_word(s, i, mode):
                    i += 1
                if i < n and s[i] in '\'"':
                    raise ParseError(col0 + i, 'a quote inside a word')
                val = Tok('word', col0 + vs, col0 + i, text=s[vs:i])
                if not val.text:
                    raise ParseError(col0 + vs, "the option '%s' needs a "
                                     'value after =' % key)
            _after_token(s, i, col0, mode)
            return Tok('option', col0 + start, col0 + i, key=key,
                       val=val), i
        i += 1
    if i < n and s[i] in '\'"':
        raise ParseError(col0 + i, 'a quote inside a word')
    return Tok('word', col0 + start, col0 + i, text=s[start:i]), i


def lex(s, mode, col0=1):
    """Tokens of s in mode 'stmt' (stops at '#' or '=>'), 'prog' or 'expect'
    (stops at '#'). col0: the column of s[0]. Returns (tokens, stop) where
    stop is the index where lexing ended and, in 'stmt' mode, arrow is
    True when it stopped at '=>'."""
    toks = []
    i = 0
    n = len(s)
    arrow = False
    while True:
        while i < n and s[i] in BLANKS:
            i += 1
        if i >= n or (mode != 'prog' and s[i] == '#'):
            break
        if mode == 'stmt' and s.startswith('=>', i):
            arrow = True
            break
        if _string_starts(s, i):
            t, i = _lex_string(s, i, col0, mode)
            _after_token(s, i, col0, mode)
        elif mode == 'stmt' and s[i] in '[]':
            t = Tok(s[i], col0 + i, col0 + i + 1)
            i += 1
        elif mode == 'prog' and s[i] == ';':
            t = Tok(';', col0 + i, col0 + i + 1)
            i += 1
        else:
            t, i = _lex_word(s, i, col0, mode)
        toks.append(t)
    return toks, i, arrow


# ---- Values and expectations ----------------------------------------------

def tok_value(t):
    """The Python value of a value token (word, str, bytes)."""
    if t.kind in ('str', 'bytes'):
        return t.decoded()
    if t.kind == 'word':
        try:
            v = word_value(t.text)
        except ValueError as e:
            raise ParseError(t.col, str(e))
        if v is not NOT_A_VALUE:
            return v
        raise ParseError(t.col, "'%s' is not a value (None, True, False, an "
                         'integer, a float, a string or bytes)' % t.text)
    raise ParseError(t.col, 'a value was expected here')


def canonical_tokens(text, col0=1):
    """The canonical tokens of an expectation: words as written, strings
    and bytes as repr() writes them."""
    toks, _, _ = lex(text, 'expect', col0)
    out = []
    for t in toks:
        if t.kind == 'word':
            out.append(t.text)
        else:
            out.append(repr(t.decoded()))
    return out


def _is_error_type(tok):
    return (tok[:1].isupper() and tok not in ('None', 'True', 'False')
            and tok.isidentifier())


def relaxable(tokens):
    """True when the observation ends with an error TYPE 'MESSAGE'."""
    return (len(tokens) >= 2 and tokens[-1][:1] in '\'"'
            and _is_error_type(tokens[-2]))


def match(expected, observed):
    """(matched, shown): does the expectation (canonical tokens) hold for
    the observation (canonical tokens), and the tokens the trace shows. An
    error written without its message matches any message, and the trace
    then shows the type alone."""
    if expected == observed:
        return True, observed
    if relaxable(observed) and expected == observed[:-1]:
        return True, observed[:-1]
    return False, observed


# ---- Task programs ---------------------------------------------------------

class TStmt(object):
    def __init__(self, verb, col, arg=None, arg2=None, sub=None):
        self.verb, self.col, self.arg, self.arg2, self.sub = (
            verb, col, arg, arg2, sub)

    def __repr__(self):
        return 'TStmt(%s, %r, %r)' % (self.verb, self.arg, self.arg2)


def _int_arg(t, lo, hi, what):
    v = NOT_A_VALUE
    if t.kind == 'word':
        try:
            v = word_value(t.text)
        except ValueError:
            v = NOT_A_VALUE
    if type(v) is not int or not lo <= v <= hi:
        raise ParseError(t.col, '%s must be an integer from %d to %d'
                         % (what, lo, hi))
    return v


def _name_arg(t, what):
    if t.kind != 'word':
        raise ParseError(t.col, '%s must be a name' % what)
    return check_name(t.text, t.col, what)


def parse_program(text, col0=1, nested=False):
    """A task program: a list of TStmt. col0 is the column of text[0] in
    the scenario line (for messages). nested: the program of a task's
    submit, which has no strings."""
    toks, _, _ = lex(text, 'prog', col0)
    stmts = []
    groups = []
    cur = []
    for t in toks:
        if t.kind == ';':
            if not cur:
                raise ParseError(t.col, 'an empty statement in a task program')
            groups.append((cur, t))
            cur = []
        else:
            cur.append(t)
    if cur:
        groups.append((cur, None))
    elif groups:
        raise ParseError(groups[-1][1].col, "a ';' ends the program: a "
                         'statement must follow it')
    for g, _semi in groups:
        if stmts and stmts[-1].verb in TASK_ENDS:
            raise ParseError(g[0].col, 'this statement is never run: the one '
                             'before it ends the task')
        stmts.append(_parse_tstmt(g, nested))
    return stmts


def _parse_tstmt(g, nested):
    v = g[0]
    if v.kind != 'word':
        raise ParseError(v.col, 'a task statement starts with a verb')
    if v.text not in TVERBS:
        raise ParseError(v.col, "unknown task statement '%s'" % v.text)
    verb = v.text
    args = g[1:]
    want = TVERBS[verb]
    if len(args) != want:
        at = args[want].col if len(args) > want else v.end
        raise ParseError(at, "'%s' takes %d argument%s, not %d"
                         % (verb, want, '' if want == 1 else 's', len(args)))
    if nested:
        for a in args:
            if a.kind in ('str', 'bytes'):
                raise ParseError(a.col, "the program of a task's submit has "
                                 'no strings')
    if verb == 'return':
        return TStmt(verb, v.col, tok_value(args[0]))
    if verb == 'raise':
        t, m = args
        if t.kind != 'word' or t.text not in RAISABLE:
            raise ParseError(t.col, 'raise needs one of the raisable types '
                             '(ValueError, KeyError, RuntimeError, ... see '
                             'SCENARIOS.md)')
        if m.kind != 'str':
            raise ParseError(m.col, "raise needs a message 'MESSAGE'")
        return TStmt(verb, v.col, t.text, m.decoded())
    if verb in ('wait', 'open'):
        return TStmt(verb, v.col, _name_arg(args[0], 'a gate'))
    if verb == 'result':
        return TStmt(verb, v.col, _name_arg(args[0], 'a future'))
    if verb == 'spin':
        return TStmt(verb, v.col, _int_arg(args[0], 0, INT64_MAX,
                                           "spin's count"))
    if verb == 'exit':
        return TStmt(verb, v.col, _int_arg(args[0], 0, 255, "exit's status"))
    if verb == 'sleep':
        t = args[0]
        s = NOT_A_VALUE
        if t.kind == 'word':
            try:
                s = word_value(t.text)
            except ValueError:
                s = NOT_A_VALUE
        if type(s) not in (int, float) or not 0 <= s <= 3600:
            raise ParseError(t.col, 'sleep needs seconds from 0 to 3600')
        return TStmt(verb, v.col, s)
    if verb == 'kill':
        t = args[0]
        if t.kind != 'word' or t.text not in SIGNALS:
            raise ParseError(t.col, 'kill needs SIGKILL, SIGTERM, SIGSEGV or '
                             'SIGABRT')
        return TStmt(verb, v.col, t.text)
    if verb == 'submit':
        t = args[0]
        if t.kind != 'str':
            raise ParseError(t.col, "submit needs a program 'PROGRAM'")
        inner = t.decoded()
        sub = parse_program(inner, t.rawcol, nested=True)
        return TStmt(verb, v.col, inner, sub=sub)
    return TStmt(verb, v.col)  # calls, thread_name


def program_walk(stmts):
    """Every statement of a program, those of its submits included."""
    for s in stmts:
        yield s
        if s.sub:
            for x in program_walk(s.sub):
                yield x


# ---- Scenario files ---------------------------------------------------------

class Statement(object):
    """line, col: where the verb is; text: the statement as written,
    without expectation and comment, trimmed; verb; args: a dict;
    expect: canonical tokens or None."""

    def __init__(self, line, col, verb, text):
        self.line, self.col, self.verb, self.text = line, col, verb, text
        self.args = {}
        self.expect = None

    @property
    def expect_text(self):
        return None if self.expect is None else ' '.join(self.expect)

    def __repr__(self):
        return 'Statement(%d, %r)' % (self.line, self.text)


class Scenario(object):
    def __init__(self, path):
        self.path = path
        self.clauses = None
        self.pools = 'both'
        self.python = (3, 2)
        self.deadlock = None      # sorted list of future names, or None
        self.statements = []
        self.gates = set()
        self.kinds = {}           # name -> 'future', 'as_completed', 'map'
        self.nlines = 0

    def pool_list(self):
        return ['thread', 'process'] if self.pools == 'both' else [self.pools]

    def expectations(self):
        return sum(1 for s in self.statements if s.expect is not None)

    def by_line(self):
        return dict((s.line, s) for s in self.statements)


# statement verb -> allowed options
_OPTIONS = {
    'pool': ('max_workers', 'initializer', 'max_tasks_per_child',
             'thread_name_prefix'),
    'with': ('max_workers', 'initializer', 'max_tasks_per_child',
             'thread_name_prefix'),
    'end': (), 'shutdown': ('wait', 'cancel_futures'),
    'future': (), 'set_running': (), 'set_result': (), 'set_exception': (),
    'submit': (), 'cancel': (), 'cancelled': (), 'running': (), 'done': (),
    'result': ('timeout',), 'exception': ('timeout',), 'callback': (),
    'callbacks': (), 'wait': ('timeout',), 'as_completed': ('timeout',),
    'next': (), 'rest': (), 'map': ('timeout', 'chunksize', 'buffersize'),
    'close': (), 'open': (), 'await': (),
}
# option -> (python version it needs, pools it needs)
_OPTION_NEEDS = {
    'cancel_futures': ((3, 9), None),
    'max_tasks_per_child': ((3, 11), 'process'),
    'buffersize': ((3, 14), None),
    'thread_name_prefix': (None, 'thread'),
}


class _Parser(object):
    def __init__(self, path):
        self.sc = Scenario(path)
        self.pool_made = False
        self.with_open = False
        self.ended = False
        self.program_futures = []   # (name, line, col) from 'result F'
        self.line = 0

    # -- helpers
    def err(self, col, msg):
        raise ParseError(col, msg)

    def option_value(self, t, kinds, what):
        """kinds: a subset of 'int', 'none', 'bool', 'number', 'str',
        'program'."""
        v = t.val
        if v.kind == 'word':
            try:
                x = word_value(v.text)
            except ValueError as e:
                self.err(v.col, str(e))
            if x is None and 'none' in kinds:
                return None
            if type(x) is bool and 'bool' in kinds:
                return x
            if type(x) is int and ('int' in kinds or 'number' in kinds):
                return x
            if type(x) is float and 'number' in kinds:
                return x
        elif v.kind == 'str':
            if 'program' in kinds:
                if v.quote != '"':
                    self.err(v.col, 'a task program is a double-quoted string')
                return v
            if 'str' in kinds:
                return v.decoded()
        self.err(v.col, '%s needs %s' % (t.key, what))

    def program(self, t):
        """Parses the program of a string token; returns its text."""
        if t.kind != 'str' or t.quote != '"':
            self.err(t.col, 'a task program is a double-quoted string')
        stmts = parse_program(t.raw, t.rawcol)
        for s in program_walk(stmts):
            need = POOL_ONLY.get(s.verb)
            if need and self.sc.pools != need:
                self.err(s.col, "'%s' is for %s pools, and this scenario runs "
                         "on %s (pools: %s)" % (
                             s.verb, need, 'both pools' if self.sc.pools ==
                             'both' else self.sc.pools + ' pools',
                             self.sc.pools))
            if s.verb in ('wait', 'open'):
                self.sc.gates.add(s.arg)
            if s.verb == 'result':
                self.program_futures.append((s.arg, self.line, s.col))
        return t.raw

    def need_option(self, key, col):
        ver, pools = _OPTION_NEEDS.get(key, (None, None))
        if ver and self.sc.python < ver:
            self.err(col, "%s needs 'python: %d.%d' (or later) in the header"
                     % (key, ver[0], ver[1]))
        if pools and self.sc.pools != pools:
            self.err(col, "%s is for a scenario with 'pools: %s'"
                     % (key, pools))

    def define(self, t, kind):
        name = self.name(t, 'a future' if kind == 'future' else
                         'an iterator')
        if name in self.sc.kinds:
            self.err(t.col, "'%s' is already defined" % name)
        return name, kind

    def name(self, t, what):
        if t.kind != 'word':
            self.err(t.col, '%s must be a name' % what)
        return check_name(t.text, t.col, what)

    def future(self, t):
        name = self.name(t, 'a future')
        k = self.sc.kinds.get(name)
        if k is None:
            self.err(t.col, "'%s' is not defined" % name)
        if k != 'future':
            self.err(t.col, "'%s' is an iterator, not a future" % name)
        return name

    def iterator(self, t, kinds=('as_completed', 'map')):
        name = self.name(t, 'an iterator')
        k = self.sc.kinds.get(name)
        if k is None:
            self.err(t.col, "'%s' is not defined" % name)
        if k not in kinds:
            if k == 'future':
                self.err(t.col, "'%s' is a future, not an iterator" % name)
            self.err(t.col, "'%s' is an as_completed iterator: close is for "
                     'map iterators' % name)
        return name

    def names_list(self, t, what):
        if t.kind != 'list':
            self.err(t.col, 'a list [%s ...] was expected here' % what)
        return t.items

    # -- headers
    def header(self, s, m, col0):
        key = m.group(1)
        kcol = col0
        if key not in HEADER_KEYS:
            self.err(kcol, "unknown header key '%s' (clauses, pools, python, "
                     'deadlock)' % key)
        if self.sc.statements:
            self.err(kcol, "'%s:' is a header: headers come before the first "
                     'statement' % key)
        if key in self.seen_keys:
            self.err(kcol, "'%s:' is given twice" % key)
        self.seen_keys[key] = self.line
        rest = s[m.end():]
        vcol = col0 + m.end()
        cut = rest.find('#')
        if cut >= 0:
            rest = rest[:cut]
        words = []
        i = 0
        while i < len(rest):
            if rest[i] in BLANKS:
                i += 1
                continue
            j = i
            while j < len(rest) and rest[j] not in BLANKS:
                j += 1
            words.append((rest[i:j], vcol + i))
            i = j
        if not words:
            self.err(vcol, "'%s:' needs a value" % key)
        if key == 'clauses':
            for w, c in words:
                if not _CLAUSE.match(w):
                    self.err(c, "'%s' is not a clause id (lowercase words of "
                             "a-z0-9- joined by '.', at least two)" % w)
            self.sc.clauses = [w for w, _ in words]
        elif key == 'pools':
            if len(words) != 1 or words[0][0] not in POOLS_VALUES:
                self.err(words[0][1] if words[0][0] not in POOLS_VALUES
                         else words[1][1],
                         "'pools:' is thread, process or both")
            self.sc.pools = words[0][0]
        elif key == 'python':
            pm = _PYTHON.match(words[0][0])
            if len(words) != 1 or not pm:
                self.err(words[0][1] if not pm else words[1][1],
                         "'python:' is a version 3.N")
            self.sc.python = (3, int(pm.group(1)))
        else:
            for w, c in words:
                check_name(w, c, 'a future of deadlock:')
            self.deadlock_words = words

    # -- statements
    def statement(self, s, col0):
        toks, stop, arrow = lex(s, 'stmt', col0)
        # group [ ... ] into lists
        args = []
        i = 0
        while i < len(toks):
            t = toks[i]
            if t.kind == '[':
                items = []
                i += 1
                while i < len(toks) and toks[i].kind != ']':
                    it = toks[i]
                    if it.kind == '[':
                        self.err(it.col, 'lists do not nest')
                    if it.kind not in ('word', 'str'):
                        self.err(it.col, 'a list holds names or strings')
                    items.append(it)
                    i += 1
                if i >= len(toks):
                    self.err(t.col, "a list is not closed: ']' is missing")
                _after = toks[i]
                args.append(Tok('list', t.col, _after.end, items=items))
                i += 1
            elif t.kind == ']':
                self.err(t.col, "a ']' without '['")
            else:
                args.append(t)
                i += 1
        text = s[:stop].strip(BLANKS)
        if not args:
            self.err(col0 + stop, 'a statement starts with a verb')
        verb_t = args[0]
        if verb_t.kind != 'word' or verb_t.text not in _OPTIONS:
            what = verb_t.text if verb_t.kind == 'word' else None
            self.err(verb_t.col, "unknown statement '%s'" % what if what
                     else 'a statement starts with a verb')
        st = Statement(self.line, verb_t.col, verb_t.text, text)
        if arrow:
            ex = s[stop + 2:]
            excol = col0 + stop + 2
            st.expect = canonical_tokens(ex, excol)
            if not st.expect:
                self.err(excol, "'=>' needs an expectation after it")
        pos, opts = [], {}
        for t in args[1:]:
            if t.kind == 'option':
                check_name(t.key, t.col, 'an option')
                if t.key not in _OPTIONS[st.verb]:
                    self.err(t.col, "'%s' has no option '%s'"
                             % (st.verb, t.key))
                if t.key in opts:
                    self.err(t.col, "the option '%s' is given twice" % t.key)
                self.need_option(t.key, t.col)
                opts[t.key] = t
            else:
                if opts:
                    self.err(t.col, 'a positional argument after the '
                             'options')
                pos.append(t)
        getattr(self, 's_' + st.verb)(st, verb_t, pos, opts)
        self.sc.statements.append(st)

    def positional(self, verb_t, pos, lo, hi=None):
        hi = lo if hi is None else hi
        if len(pos) > hi:
            self.err(pos[hi].col, "'%s' takes %s, this is one too many"
                     % (verb_t.text, _count(lo, hi)))
        if len(pos) < lo:
            self.err(verb_t.end if not pos else pos[-1].end,
                     "'%s' takes %s" % (verb_t.text, _count(lo, hi)))

    def timeout(self, st, opts):
        if 'timeout' in opts:
            st.args['timeout'] = self.option_value(
                opts['timeout'], ('number', 'none'), 'a number of seconds '
                'or None')

    def pool_use(self, st, verb_t, allow_error_after_end):
        if not self.pool_made:
            self.err(verb_t.col, "there is no pool yet: 'pool' or 'with' "
                     'comes first')
        if self.ended:
            if not (allow_error_after_end and st.expect
                    and st.expect[0] == 'raises'):
                self.err(verb_t.col, "the pool is used after 'end' (only a "
                         "submit or map expecting the error may follow)")

    def s_pool(self, st, verb_t, pos, opts):
        self.positional(verb_t, pos, 0)
        if self.pool_made:
            self.err(verb_t.col, 'a scenario makes at most one pool')
        self.pool_made = True
        if st.verb == 'with':
            self.with_open = True
        a = st.args
        if 'max_workers' in opts:
            a['max_workers'] = self.option_value(
                opts['max_workers'], ('int', 'none'), 'an integer or None')
        if 'max_tasks_per_child' in opts:
            a['max_tasks_per_child'] = self.option_value(
                opts['max_tasks_per_child'], ('int', 'none'),
                'an integer or None')
        if 'thread_name_prefix' in opts:
            a['thread_name_prefix'] = self.option_value(
                opts['thread_name_prefix'], ('str',), 'a string')
        if 'initializer' in opts:
            t = opts['initializer'].val
            if t.kind != 'str':
                self.err(t.col, 'initializer needs a task program "..."')
            a['initializer'] = self.program(t)

    s_with = s_pool

    def s_end(self, st, verb_t, pos, opts):
        self.positional(verb_t, pos, 0)
        if self.ended:
            self.err(verb_t.col, "'end' is given twice")
        if not self.with_open:
            self.err(verb_t.col, "'end' closes a 'with', and there is none")
        self.ended = True
        self.with_open = False

    def s_shutdown(self, st, verb_t, pos, opts):
        self.positional(verb_t, pos, 0)
        self.pool_use(st, verb_t, False)
        for k in ('wait', 'cancel_futures'):
            if k in opts:
                st.args[k] = self.option_value(opts[k], ('bool',),
                                               'True or False')

    def s_future(self, st, verb_t, pos, opts):
        self.positional(verb_t, pos, 1)
        name, kind = self.define(pos[0], 'future')
        self.sc.kinds[name] = kind
        st.args['name'] = name

    def s_set_running(self, st, verb_t, pos, opts):
        self.positional(verb_t, pos, 1)
        st.args['name'] = self.future(pos[0])

    s_cancel = s_cancelled = s_running = s_done = s_set_running

    def s_set_result(self, st, verb_t, pos, opts):
        self.positional(verb_t, pos, 2)
        st.args['name'] = self.future(pos[0])
        st.args['value'] = tok_value(pos[1])

    def s_set_exception(self, st, verb_t, pos, opts):
        self.positional(verb_t, pos, 3)
        st.args['name'] = self.future(pos[0])
        t, m = pos[1], pos[2]
        if t.kind != 'word' or t.text not in RAISABLE:
            self.err(t.col, 'set_exception needs one of the raisable types '
                     '(ValueError, KeyError, RuntimeError, ... see '
                     'SCENARIOS.md)')
        if m.kind != 'str' or m.quote != '"':
            self.err(m.col, 'set_exception needs a message "MESSAGE"')
        st.args['type'] = t.text
        st.args['message'] = m.decoded()

    def s_submit(self, st, verb_t, pos, opts):
        self.positional(verb_t, pos, 2)
        self.pool_use(st, verb_t, True)
        name, kind = self.define(pos[0], 'future')
        st.args['program'] = self.program(pos[1])
        self.sc.kinds[name] = kind
        st.args['name'] = name

    def s_result(self, st, verb_t, pos, opts):
        self.positional(verb_t, pos, 1)
        st.args['name'] = self.future(pos[0])
        self.timeout(st, opts)

    s_exception = s_result

    def s_callback(self, st, verb_t, pos, opts):
        self.positional(verb_t, pos, 2, 3)
        st.args['name'] = self.future(pos[0])
        st.args['callback'] = self.name(pos[1], 'a callback')
        st.args['raises'] = False
        if len(pos) == 3:
            if pos[2].kind != 'word' or pos[2].text != 'raises':
                self.err(pos[2].col, "the third argument of 'callback' can "
                         "only be 'raises'")
            st.args['raises'] = True

    def s_callbacks(self, st, verb_t, pos, opts):
        self.positional(verb_t, pos, 0)
        if st.expect is not None:
            text = ' '.join(st.expect)
            st.args['count'] = 0 if text == 'none' else len(text.split(', '))

    def s_wait(self, st, verb_t, pos, opts):
        self.positional(verb_t, pos, 1, 2)
        items = self.names_list(pos[0], 'F')
        st.args['names'] = [self.future(t) for t in items]
        st.args['return_when'] = 'ALL_COMPLETED'
        if len(pos) == 2:
            t = pos[1]
            if t.kind != 'word' or t.text not in RETURN_WHEN:
                self.err(t.col, 'wait takes all, first_completed or '
                         'first_exception here')
            st.args['return_when'] = RETURN_WHEN[t.text]
        self.timeout(st, opts)

    def s_as_completed(self, st, verb_t, pos, opts):
        self.positional(verb_t, pos, 2)
        name, kind = self.define(pos[0], 'as_completed')
        items = self.names_list(pos[1], 'F')
        st.args['names'] = [self.future(t) for t in items]
        self.timeout(st, opts)
        self.sc.kinds[name] = kind
        st.args['name'] = name

    def s_next(self, st, verb_t, pos, opts):
        self.positional(verb_t, pos, 1)
        st.args['name'] = self.iterator(pos[0])
        st.args['kind'] = self.sc.kinds[st.args['name']]

    s_rest = s_next

    def s_close(self, st, verb_t, pos, opts):
        self.positional(verb_t, pos, 1)
        st.args['name'] = self.iterator(pos[0], ('map',))
        st.args['kind'] = 'map'

    def s_map(self, st, verb_t, pos, opts):
        self.positional(verb_t, pos, 2)
        self.pool_use(st, verb_t, True)
        name, kind = self.define(pos[0], 'map')
        items = self.names_list(pos[1], '"PROGRAM"')
        st.args['programs'] = [self.program(t) for t in items]
        self.timeout(st, opts)
        if 'chunksize' in opts:
            st.args['chunksize'] = self.option_value(opts['chunksize'],
                                                     ('int',), 'an integer')
        if 'buffersize' in opts:
            st.args['buffersize'] = self.option_value(
                opts['buffersize'], ('int', 'none'), 'an integer or None')
        self.sc.kinds[name] = kind
        st.args['name'] = name

    def s_open(self, st, verb_t, pos, opts):
        self.positional(verb_t, pos, 1)
        st.args['gate'] = self.name(pos[0], 'a gate')
        self.sc.gates.add(st.args['gate'])

    s_await = s_open

    # -- the file
    def parse(self, data):
        if isinstance(data, bytes):
            try:
                text = data.decode('utf-8')
            except UnicodeDecodeError as e:
                before = data[:e.start]
                line = before.count(b'\n') + 1
                last = before.rsplit(b'\n', 1)[-1]
                raise FileError(self.sc.path, line,
                                len(last.decode('utf-8')) + 1,
                                'the file is not valid UTF-8')
        else:
            text = data
        lines = text.split('\n')
        if lines and lines[-1] == '':
            lines.pop()
        self.sc.nlines = len(lines)
        self.seen_keys = {}
        self.deadlock_words = None
        for n, raw in enumerate(lines, 1):
            self.line = n
            if '\0' in raw:
                raise FileError(self.sc.path, n, raw.index('\0') + 1,
                                'a NUL character')
            try:
                self.one_line(raw)
            except ParseError as e:
                raise FileError(self.sc.path, n, e.col, e.msg)
        sc = self.sc
        if sc.clauses is None:
            raise FileError(sc.path, 1, 1, "the header needs 'clauses:'")
        for name, line, col in self.program_futures:
            if sc.kinds.get(name) != 'future':
                raise FileError(sc.path, line, col, "'%s' is not a future of "
                                'this scenario' % name)
        if self.deadlock_words:
            names = []
            for w, c in self.deadlock_words:
                if sc.kinds.get(w) != 'future':
                    raise FileError(sc.path, self.seen_keys['deadlock'], c,
                                    "deadlock: '%s' is not a future of this "
                                    'scenario' % w)
                names.append(w)
            sc.deadlock = sorted(set(names))
        return sc

    def one_line(self, raw):
        i = 0
        while i < len(raw) and raw[i] in BLANKS:
            i += 1
        s = raw[i:]
        col0 = i + 1
        if not s.strip(BLANKS) or s.startswith('#'):
            return
        m = _HEADER.match(s)
        if m:
            self.header(s, m, col0)
            return
        if self.sc.clauses is None:
            raise ParseError(col0, "the header needs 'clauses:' before the "
                             'first statement')
        self.statement(s, col0)


def _count(lo, hi):
    def n(k):
        return '%d argument%s' % (k, '' if k == 1 else 's')
    if lo == hi:
        return n(lo)
    return 'from %d to %s' % (lo, n(hi))


def parse_scenario(path, data):
    """Parses a scenario file (bytes or str). Raises FileError."""
    return _Parser(path).parse(data)


def parse_file(path):
    with open(path, 'rb') as f:
        data = f.read()
    return parse_scenario(path, data)


def version_text(v):
    return '%d.%d' % v


def running_python():
    return tuple(sys.version_info[:2])
