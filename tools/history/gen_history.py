"""Generate a linearizable key-value history for lincheck benchmarks and tests.

Usage: gen_history.py [--ops N] [--keys K] [--procs P] [--seed S]
                      [--info PERMILLE] [--fail PERMILLE] [-o FILE]

Simulates P client processes against one atomic register store: each op is
invoked, takes effect at one later step (its linearization point) and returns
at a still later step, with other processes' steps interleaved in between, so
ops overlap. Some ops crash (type info, applied or not, the process is then
replaced by a fresh id as Jepsen does) and some puts/gets fail before taking
effect. cas reads the expected value at invoke time, so it sometimes misses.
Values are unique strings. Deterministic for a seed on CPython and MicroPython
(own xorshift generator).
"""
import json
import sys


class _Rng:
    def __init__(self, seed):
        self.s = (seed * 2654435761 + 0x9E3779B9) & 0xFFFFFFFF or 1

    def below(self, n):
        x = self.s
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        self.s = x
        return x % n


def generate(ops=10000, keys=100, procs=8, seed=1, info_permille=5, fail_permille=10):
    """Return the history as a list of event dicts."""
    rng = _Rng(seed)
    store = {}
    events = []
    # per slot: None (idle) or [pid, f, key, value, phase, result]; phase 0
    # invoked, 1 applied.
    slots = [None] * procs
    pids = list(range(procs))
    next_pid = procs
    invoked = 0
    serial = 0
    limit = ops * 10 + 1000  # every slot finishes within a few of its picks
    steps = 0
    while steps < limit and (invoked < ops or any(s is not None for s in slots)):
        steps += 1
        j = rng.below(procs)
        s = slots[j]
        if s is None:
            if invoked >= ops:
                continue
            invoked += 1
            key = "k%d" % rng.below(keys)
            r = rng.below(10)
            if r < 4:
                f, value = "get", None
            elif r < 7:
                serial += 1
                f, value = "put", "v%d" % serial
            elif r < 8:
                f, value = "delete", None
            else:
                serial += 1
                old = store.get(key) if rng.below(4) else "v%d" % rng.below(serial + 1)
                f, value = "cas", [old, "v%d" % serial]
            ev = {"process": pids[j], "type": "invoke", "f": f, "key": key}
            if f != "get" and f != "delete":
                ev["value"] = value
            events.append(ev)
            slots[j] = [pids[j], f, key, value, 0, None]
            continue
        pid, f, key, value, phase, result = s
        if phase == 0:
            if f in ("put", "get") and rng.below(1000) < fail_permille:
                events.append({"process": pid, "type": "fail", "f": f, "key": key})
                slots[j] = None
                continue
            if rng.below(1000) < info_permille:
                # crashed before taking effect
                events.append({"process": pid, "type": "info", "f": f, "key": key})
                slots[j] = None
                pids[j] = next_pid
                next_pid += 1
                continue
            cur = store.get(key)
            if f == "get":
                s[5] = cur
            elif f == "put":
                store[key] = value
            elif f == "delete":
                if key in store:
                    del store[key]
            else:
                s[5] = cur == value[0]
                if s[5]:
                    store[key] = value[1]
            s[4] = 1
            continue
        if rng.below(1000) < info_permille:
            # took effect, but the client never heard back
            events.append({"process": pid, "type": "info", "f": f, "key": key})
            pids[j] = next_pid
            next_pid += 1
        elif f == "get":
            events.append({"process": pid, "type": "ok", "f": f, "key": key, "value": result})
        elif f == "cas":
            events.append({"process": pid, "type": "ok" if result else "fail", "f": f, "key": key})
        else:
            events.append({"process": pid, "type": "ok", "f": f, "key": key})
        slots[j] = None
    return events


def to_line(ev):
    """One event as JSON with its fields in a fixed order (MicroPython dicts
    are unordered), so both interpreters write the same bytes."""
    parts = []
    for name in ("process", "type", "f", "key", "value"):
        if name in ev:
            v = ev[name]
            if isinstance(v, list):
                text = "[" + ", ".join(json.dumps(x) for x in v) + "]"
            else:
                text = json.dumps(v)
            parts.append(json.dumps(name) + ": " + text)
    return "{" + ", ".join(parts) + "}"


def main(argv):
    opts = {"--ops": 10000, "--keys": 100, "--procs": 8, "--seed": 1, "--info": 5, "--fail": 10}
    out = None
    i = 0
    while i < len(argv):
        a = argv[i]
        if i + 1 >= len(argv) or (a not in opts and a != "-o"):
            print("usage: gen_history.py [--ops N] [--keys K] [--procs P] [--seed S] "
                  "[--info PERMILLE] [--fail PERMILLE] [-o FILE]")
            return 2
        if a == "-o":
            out = argv[i + 1]
        else:
            try:
                opts[a] = int(argv[i + 1])
            except ValueError:
                print("gen_history: %s wants an integer, got %r" % (a, argv[i + 1]))
                return 2
        i += 2
    events = generate(opts["--ops"], opts["--keys"], opts["--procs"], opts["--seed"],
                      opts["--info"], opts["--fail"])
    text = "".join(to_line(ev) + "\n" for ev in events)
    if out is None:
        sys.stdout.write(text)
    else:
        with open(out, "w") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
