"""The scenario generator proper: random statements checked against the model
(generate_model.py), each written only when its observation is fixed."""

import itertools
import random

from generate_model import (Hand, Model, Task, RAISABLE, SIGNALS, SHUTDOWN_MSG,
                            BROKEN_THREAD_MSG, gen_message, gen_value, prog_str,
                            stmt_str, show_result, show_exception, show_error)


class Iter:
    def __init__(self, kind, name):
        self.kind = kind          # 'ac' or 'map'
        self.name = name
        self.dead = False


def fmt_set(names):
    return '{' + ' '.join(sorted(names)) + '}'


class Gen:
    def __init__(self, seed):
        self.r = r = random.Random(seed)
        self.seed = seed
        self.lines = []
        self.python = (3, 2)
        self.futs = {}
        self.order = []           # names of futures, in definition order
        self.iters = {}
        self.burned = set()
        self.nfut = 0
        self.ngate = 0
        self.nsig = 0
        self.niter = 0
        self.nhand = 0
        self.waited_gates = set()
        self.with_block = False
        self.has_pool = False
        self.prefix = None
        x = r.random()
        self.kind = 'thread' if x < 0.42 else ('process' if x < 0.77 else 'both')
        self.m = Model(self.kind, 0)

    # -- output -----------------------------------------------------------
    def emit(self, stmt, expect, force=False):
        if force or self.r.random() < 0.85:
            self.lines.append('%s => %s' % (stmt, expect))
        else:
            self.lines.append(stmt)

    def need(self, v):
        self.python = max(self.python, v)

    def text(self):
        pools = self.kind
        head = ['# generated: seed %d' % self.seed,
                'clauses: generated.differential',
                'pools: %s' % pools]
        if self.python > (3, 2):
            head.append('python: %d.%d' % self.python)
        return '\n'.join(head + [''] + self.lines) + '\n'

    # -- names ------------------------------------------------------------
    def new_fut(self):
        self.nfut += 1
        n = self.nfut
        letters = 'abcdefghijklmnopqrstuvwxyz'
        return letters[n - 1] if n <= 26 else 'f%d' % n

    def new_gate(self):
        self.ngate += 1
        return 'g%d' % self.ngate

    def new_sig(self):
        self.nsig += 1
        return 's%d' % self.nsig

    # -- the pool ---------------------------------------------------------
    def make_pool(self):
        r, m = self.r, self.m
        if r.random() < 0.06:
            # an invalid pool: nothing uses it afterwards
            if self.kind == 'process' and r.random() < 0.4:
                self.need((3, 11))
                self.emit('pool max_workers=1 max_tasks_per_child=0',
                          "raises ValueError 'max_tasks_per_child must be >= 1'")
            else:
                self.emit('pool max_workers=%d' % r.choice([0, -1]),
                          "raises ValueError 'max_workers must be greater than 0'")
            return
        m.workers = r.choice([1, 1, 1, 2, 2, 3, 4])
        opts = ['max_workers=%d' % m.workers]
        x = r.random()
        if x < 0.15:
            m.init = 'gate'
            opts.append('initializer="open inited"')
        elif x < 0.2 and self.kind != 'both':
            m.init = 'fail'
            opts.append('initializer="raise %s %s"' % (r.choice(RAISABLE), prog_str(gen_message(r))))
        elif x < 0.25:
            m.init = 'spin'
            opts.append('initializer="spin 50"')
        if self.kind == 'process' and m.init != 'fail' and r.random() < 0.15:
            m.mtpc = r.randint(1, 3)
            opts.append('max_tasks_per_child=%d' % m.mtpc)
            self.need((3, 11))
        if self.kind == 'thread' and r.random() < 0.2:
            self.prefix = r.choice(['W', 'pool', 'x_y', 'é'])
            opts.append('thread_name_prefix=%s' % stmt_str(self.prefix))
        r.shuffle(opts)
        self.with_block = r.random() < 0.25
        self.emit(('with ' if self.with_block else 'pool ') + ' '.join(opts), 'ok')
        self.has_pool = True

    def pool_usable(self):
        return self.has_pool and not self.m.shut and not self.m.broken

    def submit_error(self):
        m = self.m
        if m.broken:
            if self.kind == 'process':
                return 'raises BrokenProcessPool', True
            return "raises BrokenThreadPool %s" % repr(BROKEN_THREAD_MSG), False
        return 'raises RuntimeError %s' % repr(SHUTDOWN_MSG), False

    # -- task programs ----------------------------------------------------
    def gen_program(self, for_map=False):
        """Returns (list of (verb, arg), text)."""
        r, m = self.r, self.m
        prog, txt = [], []
        pk = self.kind
        gates_ok = not (for_map and pk != 'thread')
        if not for_map and r.random() < 0.45:
            s = self.new_sig()
            prog.append(('open', s))
            txt.append('open ' + s)
        if gates_ok and r.random() < 0.5:
            if m.init == 'gate' and r.random() < 0.15:
                g = 'inited'
            else:
                closed = sorted(g for g in self.waited_gates if not m.gate_open(g))
                g = r.choice(closed) if closed and r.random() < 0.4 else self.new_gate()
                self.waited_gates.add(g)
            prog.append(('wait', g))
            txt.append('wait ' + g)
            if not for_map and r.random() < 0.15:
                s = self.new_sig()
                g2 = self.new_gate()
                self.waited_gates.add(g2)
                prog += [('open', s), ('wait', g2)]
                txt += ['open ' + s, 'wait ' + g2]
        if r.random() < 0.2:
            n = r.choice([1, 10, 1000, 20000])
            prog.append(('spin', n))
            txt.append('spin %d' % n)
        x = r.random()
        hands = [h for h in self.futs.values() if isinstance(h, Hand)]
        if x < 0.5:
            lit, rep = gen_value(r)
            prog.append(('return', rep))
            txt.append('return ' + lit)
        elif x < 0.7:
            typ, msg = r.choice(RAISABLE), gen_message(r)
            prog.append(('raise', (typ, msg)))
            txt.append('raise %s %s' % (typ, prog_str(msg)))
        elif x < 0.8 and m.single() and m.calls_known:
            prog.append(('calls', None))
            txt.append('calls')
        elif x < 0.85 and pk == 'thread' and self.prefix is not None and m.single():
            prog.append(('thread_name', self.prefix + '_0'))
            txt.append('thread_name')
        elif x < 0.92 and pk == 'thread' and hands and not for_map:
            h = r.choice(hands)
            prog.append(('hand', h.name))
            txt.append('result ' + h.name)
        return prog, '; '.join(txt)

    # -- actions ----------------------------------------------------------
    def act_submit(self):
        r, m = self.r, self.m
        if not self.has_pool or m.ended and r.random() < 0.7:
            return False
        name = self.new_fut()
        if not self.pool_usable():
            prog, txt = self.gen_program()
            exp, force = self.submit_error()
            self.emit('submit %s "%s"' % (name, txt), exp, True)
            self.burned.add(name)
            return True
        if m.mtpc and any(t.state != 'cancelled' and not t.observed for t in m.tasks):
            return False
        kill = (self.kind == 'process' and not m.mtpc and r.random() < 0.12
                and not m.uncertain_tasks()
                and not any(t.state == 'queued' for t in m.tasks)
                and len(m.running()) < m.workers)
        if kill:
            pre = 'spin 100; ' if r.random() < 0.3 else ''
            if r.random() < 0.5:
                prog, txt = [('exit', None)], pre + 'exit %d' % r.choice([0, 1, 3, 99])
            else:
                prog, txt = [('kill', None)], pre + 'kill ' + r.choice(SIGNALS)
        else:
            prog, txt = self.gen_program()
        t = Task(len(m.tasks), name, [prog])
        m.tasks.append(t)
        self.futs[name] = t
        self.order.append(name)
        first = m.submitted == 0
        m.submitted += 1
        if first and m.init == 'gate':
            m.open_gates.add('inited')
            m.task_opened.add('inited')
        self.emit('submit %s "%s"' % (name, txt), 'ok')
        if first and m.init == 'fail':
            m.fail_init()
        m.settle()
        if kill or (first and m.init == 'fail'):
            # observe the break at once: nothing else may race with it
            if r.random() < 0.7:
                self.emit('result %s' % name, show_result(t.outcome), force=True)
            else:
                self.emit('exception %s' % name, show_exception(t.outcome), force=True)
            m.observe(t)
        return True

    def act_map(self):
        r, m = self.r, self.m
        if not self.has_pool or m.mtpc or (m.init == 'fail' and not m.broken):
            return False
        n = r.choice([0, 1, 2, 2, 3, 4])
        if m.ended and n == 0:
            n = 1
        progs = [self.gen_program(for_map=True) for _ in range(n)]
        opts = []
        chunk = 1
        if r.random() < 0.4:
            if self.kind == 'thread':
                chunk = r.choice([0, -1, 1, 2, 3])
            elif self.kind == 'process':
                chunk = r.choice([0, 1, 2, 2, 3])
            else:
                raising = any(p[-1][0] == 'raise' for p, _ in progs if p)
                chunk = 1 if raising else r.choice([1, 2, 3])
            opts.append('chunksize=%d' % chunk)
        self.niter += 1
        name = 'm%d' % self.niter
        stmt = 'map %s [%s]%s' % (name, ' '.join('"%s"' % t for _, t in progs),
                                  ''.join(' ' + o for o in opts))
        if self.kind == 'process' and chunk < 1:
            # after 'end' a map must expect its error (the language's rule)
            self.emit(stmt, "raises ValueError 'chunksize must be >= 1.'",
                      self.m.ended)
            self.burned.add(name)
            return True
        if not self.pool_usable() and n > 0:
            exp, force = self.submit_error()
            self.emit(stmt, exp, True)
            self.burned.add(name)
            return True
        it = Iter('map', name)
        it.items = []
        it.pos = 0
        it.started = False
        it.tasks = []
        size = chunk if self.kind == 'process' and chunk > 1 else 1
        for i in range(0, n, size):
            group = [p for p, _ in progs[i:i + size]]
            t = Task(len(m.tasks), None, group, items=len(group))
            m.tasks.append(t)
            it.tasks.append(t)
            for j in range(len(group)):
                it.items.append((t, j))
        m.submitted += len(it.tasks)
        if it.tasks and m.submitted == len(it.tasks) and m.init == 'gate':
            m.open_gates.add('inited')
            m.task_opened.add('inited')
        self.iters[name] = it
        self.emit(stmt, 'ok')
        m.settle()
        return True

    def cancel_rest_certain(self, it, from_task):
        """Whether closing map `it` (or its raising) cancels a fixed set of
        its calls from from_task on: not while one may still be queued in
        reality though the model runs it (started, not confirmed; done, not
        observed), nor on a process pool, where a queued call may already
        be on its way to a worker."""
        for t in it.tasks[from_task:]:
            if (t.state == 'running' and not t.confirmed or
                    t.state == 'done' and not t.observed or
                    t.state == 'queued' and self.kind != 'thread'):
                return False
        return True

    def map_cancel_rest(self, it, from_task):
        m = self.m
        for t in it.tasks[from_task:]:
            if t.state == 'queued':
                if self.kind == 'thread':
                    t.state = 'cancelled'
                else:
                    m.calls_known = False
            elif t.state == 'done' and not t.observed:
                m.calls_known = False

    def map_step(self, it):
        """One next(): (observed text, ok) or None if it would hang."""
        if it.dead or it.pos >= len(it.items):
            it.dead = True
            return 'stop'
        t, j = it.items[it.pos]
        if t.state in ('queued', 'running'):
            return None
        ti = it.tasks.index(t)
        out = ('exc', 'CancelledError', '') if t.state == 'cancelled' else t.outcome
        if out[0] == 'exc' and not self.cancel_rest_certain(it, ti + 1):
            return None
        it.started = True
        if t.state != 'cancelled':
            self.m.observe(t)
        if out[0] == 'exc':
            it.dead = True
            self.map_cancel_rest(it, ti + 1)
            return 'raises ' + show_error(out)
        it.pos += 1
        return out[1][j]

    def act_map_next(self):
        its = [i for i in self.iters.values() if i.kind == 'map']
        if not its:
            return False
        it = self.r.choice(its)
        x = self.r.random()
        if x < 0.2:
            # close
            if it.started and not it.dead:
                done = it.pos
                tasks_done = set(t for t, _ in it.items[:done])
                idx = len([t for t in it.tasks if t in tasks_done])
                if not self.cancel_rest_certain(it, idx):
                    return False
                self.map_cancel_rest(it, idx)
            it.dead = True
            self.emit('close %s' % it.name, 'ok')
            return True
        save = (it.pos, it.dead, it.started)
        if x < 0.5:
            # rest: check first that it will not hang
            pos = it.pos
            for k in range(pos, len(it.items)):
                t, _ = it.items[k]
                if it.dead:
                    break
                if t.state in ('queued', 'running'):
                    return False
                if t.state == 'cancelled' or t.outcome[0] == 'exc':
                    if not self.cancel_rest_certain(it, it.tasks.index(t) + 1):
                        return False
                    break
            outs = []
            while True:
                o = self.map_step(it)
                if o == 'stop' or o.startswith('raises '):
                    outs.append(o)
                    break
                outs.append(o)
            self.emit('rest %s' % it.name, ' '.join(outs))
            return True
        if not it.dead and it.pos < len(it.items) and it.items[it.pos][0].state in ('queued', 'running'):
            return False
        o = self.map_step(it)
        if o is None:
            return False
        self.emit('next %s' % it.name, o)
        return True

    def act_open(self):
        r, m = self.r, self.m
        cands = sorted(g for g in self.waited_gates if not m.gate_open(g))
        if not cands:
            if r.random() < 0.1:
                g = self.new_gate()
                m.open_gates.add(g)
                self.emit('open %s' % g, 'ok')
                return True
            return False
        g = r.choice(cands)
        m.open_gates.add(g)
        self.emit('open %s' % g, 'ok')
        m.settle()
        return True

    def act_await(self):
        m = self.m
        cands = sorted(s for s in m.task_opened if s not in self.m.awaited)
        if not cands:
            return False
        s = self.r.choice(cands)
        m.awaited.add(s)
        self.emit('await %s' % s, 'ok')
        for t in m.tasks:
            if s in t.signals:
                m.confirm(t)
        return True

    def named(self, pred=None):
        out = [self.futs[n] for n in self.order if n in self.futs]
        if pred:
            out = [f for f in out if pred(f)]
        return out

    def in_live_ac(self, f):
        return any(i.kind == 'ac' and not i.dead and f in i.pending for i in self.iters.values())

    def act_obs(self):
        r, m = self.r, self.m
        fs = self.named()
        if not fs:
            return False
        f = r.choice(fs)
        q = r.choice(['done', 'cancelled', 'running', 'cancel', 'cancel'])
        proc = self.kind != 'thread'
        if isinstance(f, Hand):
            st = f.state
            if q == 'done':
                v = st in ('done', 'cancelled', 'notified')
            elif q == 'cancelled':
                v = st in ('cancelled', 'notified')
            elif q == 'running':
                v = st == 'running'
            else:
                if self.in_live_ac(f) and st == 'pending':
                    return False
                v = st in ('pending', 'cancelled', 'notified')
                if st == 'pending':
                    f.state = 'cancelled'
                    self.emit('cancel %s' % f.name, 'True')
                    m.fire_sync(f)
                    m.settle()
                    return True
            self.emit('%s %s' % (q, f.name), repr(v))
            return True
        st = f.state
        if q == 'done':
            c = m.certain(f)
            if c is None:
                return False
            v = c == 'done'
        elif q == 'cancelled':
            v = st == 'cancelled'
        elif q == 'running':
            if st == 'queued':
                if proc:
                    return False
                v = False
            elif st == 'running':
                if not f.confirmed:
                    return False
                v = True
            elif st == 'done':
                if not f.observed:
                    return False
                v = False
            else:
                v = False
        else:
            if st == 'queued':
                if proc or self.in_live_ac(f):
                    return False
                f.state = 'cancelled'
                self.emit('cancel %s' % f.name, 'True')
                m.fire_sync(f)
                return True
            elif st == 'running':
                if not f.confirmed:
                    return False
                v = False
            elif st == 'done':
                if not f.observed:
                    return False
                v = False
            else:
                v = True
        self.emit('%s %s' % (q, f.name), repr(v))
        return True

    def outcome_of(self, f):
        """('value', repr) / exc tuple / 'cancelled' / None (not finished)."""
        if isinstance(f, Hand):
            if f.state == 'done':
                return f.outcome
            if f.state in ('cancelled', 'notified'):
                return 'cancelled'
            return None
        if f.state == 'cancelled':
            return 'cancelled'
        if f.state == 'done':
            o = f.outcome
            return ('value', o[1][0]) if o[0] == 'value' else o
        return None

    def act_result(self):
        r, m = self.r, self.m
        fs = self.named()
        if not fs:
            return False
        f = r.choice(fs)
        verb = 'result' if r.random() < 0.65 else 'exception'
        out = self.outcome_of(f)
        c = m.certain(f)
        if out is None:
            # certainly unfinished: only a poll
            t0 = 'timeout=0'
            exp = 'raises TimeoutError' if r.random() < 0.7 else "raises TimeoutError ''"
            self.emit('%s %s %s' % (verb, f.name, t0), exp)
            return True
        if c is None and r.random() < 0.0:
            return False
        opt = ''
        if c == 'done' and r.random() < 0.2:
            opt = ' timeout=0'
        elif r.random() < 0.1:
            opt = ' timeout=None'
        if out == 'cancelled':
            exp = 'raises CancelledError' if r.random() < 0.5 else "raises CancelledError ''"
            force = False
        else:
            exp = show_result(out) if verb == 'result' else show_exception(out)
            force = out[0] == 'exc' and out[2] is None
        self.emit('%s %s%s' % (verb, f.name, opt), exp, force)
        m.observe(f)
        return True

    def act_hand(self):
        r, m = self.r, self.m
        hands = self.named(lambda f: isinstance(f, Hand))
        if not hands or (len(hands) < 3 and r.random() < 0.35):
            self.nhand += 1
            name = 'h%d' % self.nhand
            h = Hand(name)
            m.hands[name] = h
            self.futs[name] = h
            self.order.append(name)
            self.emit('future %s' % name, 'ok')
            return True
        h = r.choice(hands)
        x = r.random()
        st = h.state
        if x < 0.25:
            if st == 'pending':
                h.state = 'running'
                self.emit('set_running %s' % h.name, 'True')
            elif st == 'cancelled':
                h.state = 'notified'
                self.emit('set_running %s' % h.name, 'False')
            else:
                self.emit('set_running %s' % h.name, "raises RuntimeError 'Future in unexpected state'")
            return True
        if x < 0.65:
            lit, rep = gen_value(r)
            stmt = 'set_result %s %s' % (h.name, lit)
            out = ('value', rep)
        else:
            typ, msg = r.choice(RAISABLE), gen_message(r)
            stmt = 'set_exception %s %s %s' % (h.name, typ, stmt_str(msg))
            out = ('exc', typ, msg)
        if st in ('pending', 'running'):
            h.state = 'done'
            h.outcome = out
            self.emit(stmt, 'ok')
            self.finish_hand(h)
        else:
            self.emit(stmt, 'raises InvalidStateError', force=True)
        return True

    def finish_hand(self, h):
        """h was just finished by the script: its callbacks run in the
        script's thread, after the waiters were woken, so a task that
        waited on h may finish and run its own callbacks first."""
        m = self.m
        had_callbacks = bool(h.callbacks)
        m.fire_sync(h)
        logged = len(m.cb_log)
        m.settle()
        if had_callbacks and len(m.cb_log) > logged:
            m.cb_known = False

    def act_callback(self):
        r, m = self.r, self.m
        fs = self.named()
        if not fs:
            return False
        f = r.choice(fs)
        c = m.certain(f)
        if c is None:
            return False
        cb = r.choice(['cb', 'cb', 'log', 'other_cb', 'z'])
        raises = r.random() < 0.15
        stmt = 'callback %s %s%s' % (f.name, cb, ' raises' if raises else '')
        f.callbacks.append((cb, raises))
        if c == 'done':
            m.fire_sync(f)
        self.emit(stmt, 'ok')
        return True

    def act_callbacks(self):
        m = self.m
        if not m.cb_known:
            return False
        exp = ', '.join(m.cb_log) if m.cb_log else 'none'
        self.emit('callbacks', exp, force=True)
        m.cb_unsynced = set()
        return True

    # -- wait / as_completed ------------------------------------------------
    def classify(self, fs):
        D, B, U = [], [], []
        for f in fs:
            c = self.m.certain(f)
            (D if c == 'done' else B if c == 'not_done' else U).append(f)
        return D, B, U

    def wait_outcome(self, fs, mode, t0):
        D, B, U = self.classify(fs)
        allset = set(fs)
        if t0:
            if U:
                return None
            return set(D)
        if len(U) > 4:
            return None
        m = self.m

        def cond(done):
            if mode == 'all':
                return done == allset
            if mode == 'first_completed':
                return len(done) >= 1
            return done == allset or any(m.has_exc(f) and not self.is_cancelled(f) for f in done)
        outs = set()
        for perm in itertools.permutations(U):
            first = None
            for j in range(len(U) + 1):
                if cond(set(D) | set(perm[:j])):
                    first = j
                    break
            if first is None:
                return None
            for j in range(first, len(U) + 1):
                outs.add(frozenset(set(D) | set(perm[:j])))
            if len(outs) > 1:
                return None
        return set(next(iter(outs)))

    def is_cancelled(self, f):
        if isinstance(f, Hand):
            return f.state in ('cancelled', 'notified')
        return f.state == 'cancelled'

    def pick_waitables(self, lo=0, hi=4):
        fs = self.named(self.m.waitable)
        k = self.r.randint(lo, min(hi, len(fs))) if len(fs) >= lo else 0
        sel = self.r.sample(fs, k)
        return sel

    def act_wait(self):
        r = self.r
        sel = self.pick_waitables(0 if r.random() < 0.05 else 1)
        names = [f.name for f in sel]
        if names and r.random() < 0.1:
            names.append(r.choice(names))
        mode = r.choice(['all', 'all', 'first_completed', 'first_exception'])
        t0 = r.random() < 0.3
        done = self.wait_outcome(sel, mode, t0)
        if done is None:
            return False
        parts = ['wait [%s]' % ' '.join(names)]
        if mode != 'all' or r.random() < 0.3:
            parts.append(mode)
        if t0:
            parts.append('timeout=0')
        r.shuffle(parts[1:]) if False else None
        not_done = [f for f in sel if f not in done]
        self.emit(' '.join(parts), 'done %s not_done %s' % (
            fmt_set(f.name for f in done), fmt_set(f.name for f in not_done)))
        for f in done:
            self.m.observe(f)
        return True

    def ac_step(self, it):
        """as_completed next(): observed text or None if racy / would hang."""
        if it.dead:
            return None
        P = it.pending
        D, B, U = self.classify(P)
        if it.t0:
            if U or len(D) > 1:
                return None
            if D:
                P.remove(D[0])
                return D[0].name
            if not P:
                return 'stop'
            it.dead = True
            return "raises TimeoutError '%d (of %d) futures unfinished'" % (len(P), it.total)
        if len(D) == 1 and not U:
            P.remove(D[0])
            return D[0].name
        if not D and len(U) == 1:
            P.remove(U[0])
            self.m.observe(U[0])
            return U[0].name
        if not P:
            return 'stop'
        return None

    def ac_rest(self, it):
        P = it.pending
        D, B, U = self.classify(P)
        if it.t0:
            if U:
                return None
            it.pending = set()
            it.dead = True
            tail = 'stop' if not B else "raises TimeoutError '%d (of %d) futures unfinished'" % (len(B), it.total)
            return '%s %s' % (fmt_set(f.name for f in D), tail)
        if B:
            return None
        for f in U:
            self.m.observe(f)
        it.pending = set()
        return '%s stop' % fmt_set(f.name for f in D + U)

    def act_as_completed(self):
        r = self.r
        sel = self.pick_waitables(0 if r.random() < 0.1 else 1)
        names = [f.name for f in sel]
        if names and r.random() < 0.1:
            names.append(r.choice(names))
        t0 = r.random() < 0.3
        if t0 and self.classify(sel)[2]:
            return False
        self.niter += 1
        name = 'it%d' % self.niter
        it = Iter('ac', name)
        it.pending = set(sel)
        it.total = len(set(sel))
        it.t0 = t0
        self.iters[name] = it
        self.emit('as_completed %s [%s]%s' % (name, ' '.join(names), ' timeout=0' if t0 else ''), 'ok')
        if t0:
            # used at once, nothing in between (the timeout's start differs)
            while not it.dead:
                if r.random() < 0.4:
                    o = self.ac_rest(it)
                    self.emit('rest %s' % name, o)
                    break
                save = set(it.pending)
                o = self.ac_step(it)
                if o is None:
                    it.pending = save
                    o = self.ac_rest(it)
                    self.emit('rest %s' % name, o)
                    break
                self.emit('next %s' % name, o)
                if o == 'stop':
                    break
            it.dead = True
        return True

    def act_ac_next(self):
        its = [i for i in self.iters.values() if i.kind == 'ac' and not i.dead]
        if not its:
            return False
        it = self.r.choice(its)
        if self.r.random() < 0.3:
            save = set(it.pending)
            o = self.ac_rest(it)
            if o is None:
                it.pending = save
                return False
            self.emit('rest %s' % it.name, o)
            return True
        save = set(it.pending)
        o = self.ac_step(it)
        if o is None:
            it.pending = save
            return False
        self.emit('next %s' % it.name, o)
        return True

    # -- shutdown -----------------------------------------------------------
    def unfinished(self):
        return [t for t in self.m.tasks if t.state in ('queued', 'running')]

    def act_shutdown(self, end=False):
        r, m = self.r, self.m
        if not self.has_pool or m.ended or (m.shut and end):
            return False
        if end and not self.with_block:
            return False
        wait = True if end else r.random() < 0.6
        cancel = not end and r.random() < 0.4
        if m.mtpc and not wait:
            return False
        if cancel:
            if m.uncertain_tasks():
                return False
            for t in self.unfinished():
                if t.state == 'running' and not t.confirmed:
                    return False
                if t.state == 'queued' and (self.kind != 'thread' or self.in_live_ac(t)):
                    return False
        if wait:
            after = [t for t in self.unfinished() if not (cancel and t.state == 'queued')]
            if after:
                return False
        if end:
            stmt = 'end'
        else:
            parts = ['shutdown']
            if not wait or r.random() < 0.3:
                parts.append('wait=%s' % wait)
            if cancel:
                parts.append('cancel_futures=True')
                self.need((3, 9))
            elif r.random() < 0.1:
                parts.append('cancel_futures=False')
                self.need((3, 9))
            stmt = ' '.join(parts)
        if cancel:
            for t in m.tasks:
                if t.in_queue:
                    t.in_queue = False
                    t.never_notify = True
                    if t.state == 'queued':
                        t.state = 'cancelled'
                        m.fire_sync(t)
        self.emit(stmt, 'ok')
        m.shut = True
        if wait:
            for t in m.tasks:
                if t.state == 'done':
                    t.observed = True
                elif t.state == 'cancelled' and not t.never_notify:
                    t.notified = True
        if end:
            m.ended = True
        return True

    # -- the whole scenario ---------------------------------------------------
    def finish(self):
        """Open every gate a task waits on, settle every future a task waits
        on, and close the with block."""
        m = self.m
        for h in self.named(lambda f: isinstance(f, Hand)):
            if h.state in ('pending', 'running') and any(
                    t.state in ('queued', 'running') and ('hand', h.name) in t.prog[0]
                    for t in m.tasks):
                h.state = 'done'
                h.outcome = ('value', 'None')
                self.emit('set_result %s None' % h.name, 'ok')
                self.finish_hand(h)
        for g in sorted(self.waited_gates):
            if not m.gate_open(g):
                m.open_gates.add(g)
                self.emit('open %s' % g, 'ok')
                m.settle()
        if self.with_block and not m.ended:
            self.act_shutdown(end=True)

    def generate(self):
        r = self.r
        if r.random() < 0.92:
            self.make_pool()
        size = r.randint(5, 38)
        acts = [(self.act_submit, 8), (self.act_open, 5), (self.act_await, 4),
                (self.act_result, 6), (self.act_obs, 5), (self.act_hand, 3),
                (self.act_callback, 3), (self.act_callbacks, 2), (self.act_wait, 3),
                (self.act_as_completed, 2), (self.act_ac_next, 3), (self.act_map, 2),
                (self.act_map_next, 4), (self.act_shutdown, 1)]
        if self.with_block:
            acts.append((lambda: self.act_shutdown(end=True), 1))
        funcs = [a for a, _ in acts]
        weights = [w for _, w in acts]
        tries = 0
        while len(self.lines) < size and tries < 400:
            tries += 1
            if self.m.cb_unsynced and self.m.cb_known and r.random() < 0.5:
                if self.act_callbacks():
                    continue
            f = r.choices(funcs, weights)[0]
            f()
        self.finish()
        return self.text()


def generate(seed):
    return Gen(seed).generate()
