"""Linearizability checker for key-value client histories.

Usage: lincheck.py [--max-configs N] [--quiet] HISTORY.jsonl   ('-' reads stdin)

Input is JSON lines, one event each, e.g.
  {"process": 3, "type": "invoke", "f": "put", "key": "k1", "value": "v"}
  {"process": 3, "type": "ok"}
`type` is invoke, then ok / fail (did not happen) / info (may have happened at
any point after its invoke, or never). `f` is get (its ok carries the `value`
read, null when absent), put, delete or cas (`value` is [old, new]; ok means it
swapped, fail means it did not). An invoke left open when the history ends
counts as info. Lines are numbered from 1; the line number is the time.

Output: human-readable lines, then one line of JSON: `linearizable` (true,
false, or null when undecided), `ops` (invocations), `keys`, `ok`, `fail`,
`info` (info or left open) and, for a failure, `key` (of the failing keys in
`failed_keys`, the one whose failure shows first), `prefix_end_line` (the
shortest failing prefix of the history ends there) and `ops_unorderable`:
op dicts {process, f, key, value, type, invoke, complete} (lines; complete
null for info). Exit 0 linearizable, 1 not, 2 malformed input (the message
names the line) or bad usage, 3 gave up on some key (in `unknown_keys`) after
--max-configs configurations or on MemoryError (`linearizable` null). The CLI
adds `ms`, the wall time.

Algorithm: Wing & Gong / Lowe with the Porcupine accelerations. Every op
touches one key, so each key is checked alone (P-compositionality). Call and
return entries form a doubly linked list in time order; a depth-first search
lifts a call (and its return) out of the list when the op can be linearized
next, backtracks with an explicit stack when it meets a return entry, and
memoizes (linearized set, value) so no configuration is explored twice.
Ops that may never have happened (info) return at infinity and need not be
linearized at all; see _search for how they are kept from blowing up the
search. Iterative only, json and sys only: it runs under MicroPython too
(`import lincheck; lincheck.check_events(events)`).

On failure the search itself yields the shortest failing prefix (the deepest
point any order reached). The op f whose return ends it, the ops overlapping
f or possibly last before it, and the writers of the values they saw are then
shrunk greedily to a set S that fails on its own, where relaxing any read but
f to "never happened" makes it linearizable; a writer of a value that a read
in S saw stays, so S explains rather than degenerating to "nobody wrote it".
"""
import json
import sys

_GET = 0
_PUT = 1
_DEL = 2
_CAS = 3
_NAMES = ("get", "put", "delete", "cas")
_KINDS = {"get": _GET, "put": _PUT, "delete": _DEL, "cas": _CAS}
_TYPES = ("invoke", "ok", "fail", "info")
# Budget of each search while shrinking a failure: past it an op is kept.
_SHRINK_BUDGET = 20000
_SHRINK_MAX_OPS = 64


class HistoryError(ValueError):
    """Malformed history; args[0] names the line and the problem."""


class GaveUp(Exception):
    """The search met its configuration budget before deciding."""


# Op record fields (a list, so the shrinker can copy and relax it).
_K = 0  # kind
_A = 1  # get: value read; put: value; cas: old
_B = 2  # cas: new
_INV = 3  # invoke line
_RET = 4  # completion line, None when info/open (returns at infinity)
_PROC = 5
_KEY = 6


def _scalar(v):
    return v is None or isinstance(v, (str, int, float, bool))


def _pair(items):
    """[(line, event dict)] -> (ops, counts). Raises HistoryError."""
    open_ops = {}
    ops = []
    counts = {"ok": 0, "fail": 0, "info": 0, "open": 0}
    for line, ev in items:
        if not isinstance(ev, dict):
            raise HistoryError("line %d: event is not a JSON object" % line)
        t = ev.get("type")
        if t not in _TYPES:
            raise HistoryError("line %d: type must be one of %s, got %r" % (line, "/".join(_TYPES), t))
        p = ev.get("process")
        if not isinstance(p, (int, str)) or isinstance(p, bool):
            raise HistoryError("line %d: process must be an int or string, got %r" % (line, p))
        f = ev.get("f")
        key = ev.get("key")
        if t == "invoke":
            if f not in _KINDS:
                raise HistoryError("line %d: f must be get/put/delete/cas, got %r" % (line, f))
            if not isinstance(key, (str, int)) or isinstance(key, bool):
                raise HistoryError("line %d: key must be a string, got %r" % (line, key))
            if p in open_ops:
                raise HistoryError("line %d: process %r invokes while its op from line %d is still open"
                                   % (line, p, open_ops[p][0]))
            k = _KINDS[f]
            v = ev.get("value")
            a = b = None
            if k == _PUT:
                if "value" not in ev or not _scalar(v):
                    raise HistoryError("line %d: put needs a scalar value, got %r" % (line, v))
                a = v
            elif k == _CAS:
                if not isinstance(v, list) or len(v) != 2 or not _scalar(v[0]) or not _scalar(v[1]):
                    raise HistoryError("line %d: cas value must be [old, new], got %r" % (line, v))
                a, b = v[0], v[1]
            open_ops[p] = (line, k, a, b, key)
            continue
        if p not in open_ops:
            raise HistoryError("line %d: %s for process %r which has no open invoke" % (line, t, p))
        inv, k, a, b, okey = open_ops.pop(p)
        if f is not None and f != _NAMES[k]:
            raise HistoryError("line %d: f %r does not match the invoke's %r at line %d"
                               % (line, f, _NAMES[k], inv))
        if key is not None and key != okey:
            raise HistoryError("line %d: key %r does not match the invoke's %r at line %d"
                               % (line, key, okey, inv))
        counts[t] += 1
        if t == "fail" or (t == "info" and k == _GET):
            continue  # never happened, or a read that constrains nothing
        if t == "ok" and k == _GET:
            if "value" not in ev or not _scalar(ev["value"]):
                raise HistoryError("line %d: get ok needs the value read (null when absent)" % line)
            a = ev["value"]
        ops.append([k, a, b, inv, line if t == "ok" else None, p, okey])
    for p in open_ops:
        inv, k, a, b, okey = open_ops[p]
        counts["open"] += 1
        if k != _GET:
            ops.append([k, a, b, inv, None, p, okey])
    return ops, counts


def _search(ops, max_configs=None):
    """-1 when the one-key ops have a linearization, else the line where the
    shortest failing prefix ends: the return of the first completed op (in
    return order) that no explored order could place, as every order that
    places it also orders any prefix ending there. Raises GaveUp past
    max_configs memoized configurations.

    Completed ops are numbered in return order and live in the linked list of
    call/return entries; the linearized ones are (k, rest): ops below k all
    linearized, rest the bits from k up, so the ints stay a few words long
    (MicroPython hashes a long int by its low word only). Info ops stay out
    of the list (it would be rescanned past them at every step): one is
    available once its invoke precedes the return of op k, the earliest
    return still open. `ibits` holds the info ops used so far.

    An info put/delete is never tried on its own: in some valid order each one
    that took effect is directly followed by an op observing its value (else
    drop it; it may never have happened). So it is applied only inside such an
    observer's step, taking the earliest unused one of that value; all
    available ones of one value are interchangeable (they return at infinity).
    Info cas ops are tried on their own after the list's calls, and then
    only an observer of the new value may come next, by the same argument
    (an observer: a get, or a cas whose old value it is). A
    configuration is pruned when one with the same (k, rest, value) and a
    subset of its info ops was seen: unused info ops only add options.
    """
    done_ops = [o for o in ops if o[_RET] is not None]
    info_ops = [o for o in ops if o[_RET] is None]
    need = len(done_ops)
    if need == 0:
        return -1
    done_ops.sort(key=lambda o: o[_RET])
    info_ops.sort(key=lambda o: o[_INV])
    n = len(ops)
    kind = [0] * n
    va = [None] * n
    vb = [None] * n
    inv = [0] * n
    rets = [0] * (need + 1)
    times = []
    writers = {}  # value -> info put/delete op indices, invoke order
    icas = []  # info cas op indices, invoke order
    i = 0
    for o in done_ops + info_ops:
        c = o[_K]
        kind[i] = c
        va[i] = None if c == _DEL else o[_A]
        vb[i] = o[_B]
        inv[i] = o[_INV]
        if i < need:
            rets[i] = o[_RET]
            times.append((o[_INV], i, 0))
            times.append((o[_RET], i, 1))
        elif c == _CAS:
            icas.append(i)
        elif c != _GET:
            if va[i] in writers:
                writers[va[i]].append(i)
            else:
                writers[va[i]] = [i]
        i += 1
    times.sort()
    size = 2 * need + 2  # entry 0 is the head sentinel, size - 1 the tail
    nxt = list(range(1, size + 1))
    prv = list(range(-1, size - 1))
    opid = [0] * size
    match = [0] * size  # call entry -> its return entry; 0 marks a return entry
    call_at = [0] * need
    ret_at = [0] * need
    e = 1
    for _t, i, is_ret in times:
        opid[e] = i
        if is_ret:
            ret_at[i] = e
        else:
            call_at[i] = e
        e += 1
    for i in range(need):
        match[call_at[i]] = ret_at[i]
    nicas = len(icas)

    seen = {}  # (k, rest, value) -> ibits, or a list of them
    configs = 0
    stack = []
    state = None
    k = 0
    rest = 0
    ibits = 0
    deepest = 0  # the largest k reached
    # e > 0: the next list entry to try; e < 0: info cas number -e - 1.
    back = -nicas - 1  # an e that means "no option left: backtrack"
    # obs: the last step applied an info cas on its own, so the next must
    # observe its new value (else that cas may as well never have happened).
    obs = False
    # forced: e is a read that matches the value now; see _forced.
    e, forced = _forced(nxt, match, opid, kind, va, vb, state)
    while True:
        if e > 0:
            m = match[e]
            if not m:
                e = -1  # end of the calls that may go next
                continue
            i = opid[e]
            c = kind[i]
            if c == _PUT or c == _DEL:
                if obs:
                    e = nxt[e]
                    continue
                ns = va[i]
                w = -1
                ni = ibits
            else:
                want = va[i]
                w = -1
                ni = ibits
                if state != want:
                    w = -1 if obs else _writer(writers, want, inv, rets[k], ibits, need)
                    if w < 0:
                        e = nxt[e]
                        continue
                    ni = ibits | (1 << (w - need))
                ns = want if c == _GET else vb[i]
            nk = k
            nr = rest
            if i == k:
                nr = rest | 1
                while nr & 1:
                    nr >>= 1
                    nk += 1
            else:
                nr = rest | (1 << (i - k))
        else:
            j = -e - 1
            if j >= nicas or inv[icas[j]] > rets[k]:
                # Every option from here failed: backtrack.
                if not stack:
                    return rets[deepest]
                e, state, k, rest, ibits, forced, obs = stack.pop()
                if e > 0:
                    m = match[e]
                    prv[nxt[m]] = m
                    nxt[prv[m]] = m
                    prv[nxt[e]] = e
                    nxt[prv[e]] = e
                    e = back if forced else nxt[e]
                else:
                    e -= 1
                forced = False
                continue
            i = icas[j]
            bit = 1 << (i - need)
            if ibits & bit:
                e -= 1
                continue
            ni = ibits | bit
            want = va[i]
            if state != want:
                w = -1 if obs else _writer(writers, want, inv, rets[k], ibits, need)
                if w < 0:
                    e -= 1
                    continue
                ni |= 1 << (w - need)
            ns = vb[i]
            nk = k
            nr = rest
        key = (nk, nr, ns) if e > 0 else (nk, nr, ns, 1)
        old = seen.get(key)
        if old is None:
            seen[key] = ni
        elif isinstance(old, list):
            for s in old:
                if s & ni == s:
                    break
            else:
                old.append(ni)
                s = -1
            if s != -1:
                e = back if forced else (nxt[e] if e > 0 else e - 1)
                forced = False
                continue
        elif old & ni == old:
            e = back if forced else (nxt[e] if e > 0 else e - 1)
            forced = False
            continue
        else:
            seen[key] = [old, ni]
        configs += 1
        if max_configs is not None and configs > max_configs:
            raise GaveUp()
        if nk > deepest:
            if nk == need:
                return -1
            deepest = nk
        stack.append((e, state, k, rest, ibits, forced, obs))
        obs = e < 0
        state = ns
        k = nk
        rest = nr
        ibits = ni
        if e > 0:
            # lift the call and its return out of the list
            p = prv[e]
            q = nxt[e]
            nxt[p] = q
            prv[q] = p
            p = prv[m]
            q = nxt[m]
            nxt[p] = q
            prv[q] = p
        e, forced = _forced(nxt, match, opid, kind, va, vb, state)


def _forced(nxt, match, opid, kind, va, vb, state):
    """(entry, True) for a read among the calls that may go next that matches
    the current value, else (first entry, False). Taking such a read now
    loses nothing: it leaves the value alone, and every op still open returns
    after it was invoked, so any order placing it later can place it here.
    If that choice fails, so does the configuration (no other option needs
    trying)."""
    f = nxt[0]
    while match[f]:
        i = opid[f]
        if va[i] == state and (kind[i] == _GET or (kind[i] == _CAS and vb[i] == state)):
            return f, True
        f = nxt[f]
    return nxt[0], False


def _writer(writers, want, inv, horizon, ibits, need):
    """The earliest unused info put/delete of `want` invoked before `horizon`,
    or -1."""
    lst = writers.get(want)
    if lst is None:
        return -1
    for w in lst:
        if inv[w] > horizon:
            return -1
        if not ibits & (1 << (w - need)):
            return w
    return -1


def _prefix(ops, t):
    """The history cut after line t: later completions become info, later
    invokes vanish, and open reads drop out."""
    out = []
    for o in ops:
        if o[_INV] > t:
            continue
        if o[_RET] is not None and o[_RET] > t:
            if o[_K] == _GET:
                continue
            o = o[:]
            o[_RET] = None
        out.append(o)
    return out


def _relaxed(ops, drop):
    """ops with op `drop` turned into 'may or may not have happened'."""
    out = []
    for o in ops:
        if o is drop:
            if o[_K] == _GET:
                continue
            o = o[:]
            o[_RET] = None
        out.append(o)
    return out


def _fails(ops, budget):
    try:
        return _search(ops, budget) >= 0
    except GaveUp:
        return False  # undecided: treat as "needed", keep the op


def _wrote(o):
    c = o[_K]
    if c == _CAS:
        return o[_B]
    return None if c == _DEL else o[_A]


def _sole_writer(keep, o):
    """True when o alone in keep writes a value another op in keep observes.
    Such a writer stays, so the set explains the failure instead of shrinking
    to 'a read of a value nobody wrote'."""
    if o[_K] == _GET:
        return False
    x = _wrote(o)
    if x is None:
        return False
    seen_by = False
    for p in keep:
        if p is o:
            continue
        if p[_K] != _GET and _wrote(p) == x:
            return False
        if (p[_K] == _GET or p[_K] == _CAS) and p[_A] == x:
            seen_by = True
    return seen_by


def _explain(ops, t):
    """Shrink a key's failure whose shortest failing prefix ends at line t
    to a short list of ops that cannot be ordered."""
    pre = _prefix(ops, t)
    f = None
    for o in pre:
        if o[_RET] == t:
            f = o
    # Candidates: f, ops overlapping it, the ops that may have come last
    # before its invoke, and writers of the value it observed.
    before = [o for o in pre if o[_RET] is not None and o[_RET] < f[_INV]]
    latest = 0
    for o in before:
        if o[_INV] > latest:
            latest = o[_INV]
    cand = []
    for o in pre:
        c = o[_K]
        if o is f or (c != _GET and _wrote(o) == f[_A]):
            cand.append(o)  # f, or wrote what f saw
        elif o[_RET] is None:
            if o[_INV] > latest:
                cand.append(o)  # info, recent
        elif o[_RET] > f[_INV] or o[_RET] > latest:
            cand.append(o)  # overlaps f, or nothing completed starts after it
    # Add the writers of what the candidates saw, so that no candidate fails
    # just for lack of its writer (a cas sees too: a few rounds).
    for _round in range(4):
        wanted = {}
        for o in cand:
            if (o[_K] == _GET or o[_K] == _CAS) and o[_A] is not None:
                wanted[o[_A]] = True
        for o in cand:
            if o[_K] != _GET and _wrote(o) in wanted:
                del wanted[_wrote(o)]
        more = [o for o in pre if o[_K] != _GET and _wrote(o) in wanted]
        if not more:
            break
        cand = cand + more
    if len(cand) > _SHRINK_MAX_OPS or not _fails(cand, _SHRINK_BUDGET):
        # The window alone does not fail: shrink the whole prefix if small.
        cand = pre if len(pre) <= _SHRINK_MAX_OPS else cand
    if not _fails(cand, _SHRINK_BUDGET):
        return cand
    keep = cand
    for o in sorted(cand, key=lambda x: -x[_INV]):
        if o is f or _sole_writer(keep, o):
            continue
        if _fails(_relaxed(keep, o), _SHRINK_BUDGET):
            keep = [x for x in keep if x is not o]
    keep.sort(key=lambda x: x[_INV])
    return keep


def _op_dict(o):
    v = o[_A]
    if o[_K] == _CAS:
        v = [o[_A], o[_B]]
    elif o[_K] == _DEL:
        v = None
    return {"process": o[_PROC], "f": _NAMES[o[_K]], "key": o[_KEY], "value": v,
            "type": "ok" if o[_RET] is not None else "info",
            "invoke": o[_INV], "complete": o[_RET]}


def _key_order(k):
    return (isinstance(k, str), k)


def check_items(items, max_configs=None, explain=True):
    """items: [(line, event dict)]. Returns the result dict (see module doc).
    Raises HistoryError for malformed input."""
    ops, counts = _pair(items)
    by_key = {}
    for o in ops:
        if o[_KEY] in by_key:
            by_key[o[_KEY]].append(o)
        else:
            by_key[o[_KEY]] = [o]
    keys = sorted(by_key, key=_key_order)
    res = {"linearizable": True, "ops": counts["ok"] + counts["fail"] + counts["info"] + counts["open"],
           "keys": len(keys), "ok": counts["ok"], "fail": counts["fail"],
           "info": counts["info"] + counts["open"]}
    failed = []
    unknown = []
    ends = {}
    for key in keys:
        try:
            t = _search(by_key[key], max_configs)
            if t >= 0:
                failed.append(key)
                ends[key] = t
        except (GaveUp, MemoryError):  # MemoryError: a small heap (MicroPython)
            unknown.append(key)
    if failed:
        key = failed[0]
        for k in failed:
            if ends[k] < ends[key]:
                key = k  # report the failure that shows first
        res["linearizable"] = False
        res["key"] = key
        res["failed_keys"] = failed
        if explain:
            res["prefix_end_line"] = ends[key]
            try:
                bad = _explain(by_key[key], ends[key])
            except MemoryError:
                bad = []
            res["ops_unorderable"] = [_op_dict(o) for o in bad]
    elif unknown:
        res["linearizable"] = None
    if unknown:
        res["unknown_keys"] = unknown
    return res


def check_events(events, max_configs=None, explain=True):
    """events: list of event dicts; line numbers are index + 1."""
    return check_items([(i + 1, ev) for i, ev in enumerate(events)], max_configs, explain)


def read_items(f):
    items = []
    line = 0
    for text in f:
        line += 1
        text = text.strip()
        if not text:
            continue
        try:
            ev = json.loads(text)
        except ValueError:
            raise HistoryError("line %d: not valid JSON: %s" % (line, text[:60]))
        items.append((line, ev))
    return items


def check_file(path, max_configs=None, explain=True):
    if path == "-":
        return check_items(read_items(sys.stdin), max_configs, explain)
    with open(path) as f:
        items = read_items(f)
    return check_items(items, max_configs, explain)


def _describe(d):
    end = d["complete"] if d["complete"] is not None else "open"
    v = d["value"]
    if d["f"] == "get":
        what = "get %s -> %s" % (json.dumps(d["key"]), json.dumps(v))
    elif d["f"] == "delete":
        what = "delete %s" % json.dumps(d["key"])
    else:
        what = "%s %s %s" % (d["f"], json.dumps(d["key"]), json.dumps(v))
    return "  lines %s-%s process %s %s (%s)" % (d["invoke"], end, d["process"], what, d["type"])


_USAGE = "usage: lincheck.py [--max-configs N] [--quiet] HISTORY.jsonl|-"


def main(argv):
    path = None
    max_configs = None
    quiet = False
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--max-configs" and i + 1 < len(argv):
            try:
                max_configs = int(argv[i + 1])
            except ValueError:
                print(_USAGE)
                return 2
            i += 2
            continue
        if a == "--quiet":
            quiet = True
        elif a in ("-h", "--help"):
            print(__doc__)
            return 0
        elif path is None and (a == "-" or not a.startswith("-")):
            path = a
        else:
            print(_USAGE)
            return 2
        i += 1
    if path is None:
        print(_USAGE)
        return 2
    try:
        import time
        t0 = time.time()
    except ImportError:
        time = None
    try:
        res = check_file(path, max_configs)
    except HistoryError as e:
        print("lincheck: %s: %s" % (path, e.args[0]))
        print(json.dumps({"linearizable": None, "error": e.args[0]}))
        return 2
    except OSError as e:
        print("lincheck: cannot read %s: %s" % (path, e))
        print(json.dumps({"linearizable": None, "error": "cannot read " + path}))
        return 2
    if time is not None:
        res["ms"] = int((time.time() - t0) * 1000)
    if not quiet:
        print("lincheck: %d ops (%d ok, %d fail, %d info) over %d keys"
              % (res["ops"], res["ok"], res["fail"], res["info"], res["keys"]))
        if res["linearizable"]:
            print("lincheck: linearizable")
        elif res["linearizable"] is None:
            print("lincheck: gave up on keys %s (configuration budget %s, or out of memory)"
                  % (json.dumps(res["unknown_keys"]), max_configs))
        else:
            print("lincheck: NOT linearizable: key %s (failing keys: %d)"
                  % (json.dumps(res["key"]), len(res["failed_keys"])))
            print("lincheck: the shortest failing prefix ends at line %d; these ops cannot be ordered:"
                  % res["prefix_end_line"])
            for d in res["ops_unorderable"]:
                print(_describe(d))
    print(json.dumps(res))
    if res["linearizable"]:
        return 0
    return 1 if res["linearizable"] is False else 3


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
