"""raftapp.lock: leases decided by log time, fencing tokens, under sessions."""
from raft.errors import DecodeError
from raftapp import lock as L
from raftapp.session import MALFORMED, OK, SESSION_EXPIRED, TOO_LARGE, decode_result


class _Log:
    def __init__(self, **kw):
        self.sm = L.machine(**kw)
        self.t = self.sm.app
        self.index = 0
        self.seq = {}

    def raw(self, data):
        self.index += 1
        return self.sm.apply(self.index, data)

    def register(self):
        r = decode_result(self.raw(b"\x01"))
        return int.from_bytes(r[1], "little")

    def _next(self, cid):
        self.seq[cid] = self.seq.get(cid, 0) + 1
        return self.seq[cid]

    def acquire(self, cid, name, lease):
        return L.decode_grant(self.raw(L.encode_acquire(cid, self._next(cid), name, lease)))

    def renew(self, cid, name, token, lease):
        return L.decode_grant(self.raw(L.encode_renew(cid, self._next(cid), name, token, lease)))

    def release(self, cid, name, token):
        return L.decode_grant(self.raw(L.encode_release(cid, self._next(cid), name, token)))

    def check(self, cid, name, token):
        return L.decode_grant(self.raw(L.encode_check(cid, self._next(cid), name, token)))

    def advance(self, n):
        return self.raw(L.encode_advance(n))


def test_grant_and_contention():
    log = _Log()
    a = log.register()
    b = log.register()
    assert log.acquire(a, b"x", 10) == (OK, 1, 10)
    assert log.acquire(b, b"x", 10) == (L.HELD, 1, 10)
    assert log.acquire(b, b"y", 5) == (OK, 2, 5)  # one token counter for all locks
    assert log.check(a, b"x", 1) == (OK, 1, 10)
    assert log.check(b, b"x", 1) == (L.NOT_HOLDER, 0, 0)
    assert L.decode_query(log.sm.query(L.encode_query(b"x"))) == (a, 1, 10, 0)
    assert L.decode_query(log.sm.query(L.encode_query(b"zz"))) == (0, 0, 0, 0)
    assert log.sm.is_read(L.encode_query(b"x")) and not log.sm.is_read(L.encode_advance(1))


def test_expiry_only_by_log_time():
    log = _Log()
    a = log.register()
    b = log.register()
    assert log.acquire(a, b"x", 10) == (OK, 1, 10)
    # many entries, no time: the lease holds
    for _ in range(50):
        assert log.acquire(b, b"x", 3)[0] == L.HELD
    log.advance(9)
    assert log.acquire(b, b"x", 3)[0] == L.HELD  # now 9 < expiry 10
    log.advance(1)                                # now 10: expired
    assert log.check(a, b"x", 1)[0] == L.NOT_HOLDER
    assert log.renew(a, b"x", 1, 10)[0] == L.NOT_HOLDER  # an expired lease stays expired
    assert log.acquire(b, b"x", 3) == (OK, 2, 13)
    assert log.release(a, b"x", 1)[0] == L.NOT_HOLDER  # the old holder cannot release


def test_renew_extends_only_the_live_grant_of_its_holder():
    log = _Log()
    a = log.register()
    b = log.register()
    log.acquire(a, b"x", 5)
    log.advance(4)
    assert log.renew(a, b"x", 1, 5) == (OK, 1, 9)
    assert log.renew(b, b"x", 1, 5)[0] == L.NOT_HOLDER      # not the holder
    assert log.renew(a, b"x", 2, 5)[0] == L.NOT_HOLDER      # not its token
    assert log.acquire(a, b"x", 20) == (OK, 1, 24)          # the holder again: same token
    log.advance(8)
    assert log.acquire(b, b"x", 1)[0] == L.HELD


def test_release_by_the_holder_frees_the_lock_and_others_are_refused():
    log = _Log()
    a = log.register()
    b = log.register()
    log.acquire(a, b"x", 100)
    assert log.release(b, b"x", 1)[0] == L.NOT_HOLDER
    assert log.release(a, b"x", 7)[0] == L.NOT_HOLDER
    assert log.acquire(b, b"x", 5)[0] == L.HELD
    assert log.release(a, b"x", 1)[0] == OK
    assert log.release(a, b"x", 1)[0] == L.NOT_HOLDER
    assert log.acquire(b, b"x", 5) == (OK, 2, 5)


def test_tokens_increase_across_snapshot_and_restore():
    log = _Log()
    a = log.register()
    b = log.register()
    log.acquire(a, b"x", 3)
    log.acquire(b, b"y", 30)
    log.advance(3)
    other = _Log()
    other.sm.restore(log.sm.snapshot())
    other.index = log.index
    other.seq = dict(log.seq)
    assert other.sm.snapshot() == log.sm.snapshot()
    assert other.t.now == 3 and other.t.fence == 2
    assert other.acquire(b, b"x", 5) == (OK, 3, 8)
    assert log.acquire(b, b"x", 5) == (OK, 3, 8)
    assert other.check(b, b"y", 2) == log.check(b, b"y", 2) == (OK, 2, 30)
    assert other.sm.snapshot() == log.sm.snapshot()


def test_full_table_drops_expired_locks_first():
    log = _Log(max_locks=2)
    a = log.register()
    log.acquire(a, b"p", 1)
    log.acquire(a, b"q", 50)
    assert log.acquire(a, b"r", 5) == (L.FULL, 0, 0)
    log.advance(1)  # p expired: dropped to make room
    assert log.acquire(a, b"r", 5) == (OK, 3, 6)
    assert sorted(log.t.locks) == [b"q", b"r"]


def test_bad_commands():
    log = _Log(max_name=4)
    a = log.register()
    for bad in (L.encode_acquire(a, 1, b"x", 0), L.encode_advance(0), L.encode_query(b"x")[:-1],
                L.encode_query(b"x") + b"!", b"\x08" + L.encode_advance(1)[1:],
                L.encode_renew(a, 1, b"x", 1, 5)[:12]):
        assert decode_result(log.raw(bad)) == (MALFORMED, None), bad
        try:
            log.sm.is_read(bad)
        except DecodeError:
            continue
        assert False, bad
    assert decode_result(log.raw(L.encode_acquire(a, 1, b"x", L.MAX_LEASE + 1)))[0] == TOO_LARGE
    assert decode_result(log.raw(L.encode_acquire(a, 1, b"xxxxx", 1)))[0] == TOO_LARGE
    # a holder is a session
    assert decode_result(log.raw(L.encode_acquire(0, 0, b"x", 1)))[0] == SESSION_EXPIRED
    assert log.acquire(a, b"x", 1) == (OK, 1, 1)  # seq 1 was never used up
    try:
        log.sm.query(L.encode_advance(1))
    except DecodeError:
        pass
    else:
        assert False


def _refused(t, image):
    before = (t.now, t.fence, dict(t.locks))
    try:
        t.restore(image)
    except DecodeError:
        assert (t.now, t.fence, t.locks) == before
        return
    assert False, image


def test_corrupt_image_is_refused():
    log = _Log()
    a = log.register()
    log.acquire(a, b"a", 5)
    log.acquire(a, b"b", 5)
    img = bytearray(log.t.snapshot_size())
    assert log.t.snapshot_into(img) == len(img)
    t = L.LockTable()
    t.now = 3
    for cut in range(len(img)):
        _refused(t, bytes(img[:cut]))
    _refused(t, bytes(img) + b"\x00")
    import struct
    for off, val in ((4, 1), (8, 3), (8, 1), (12 + 1, 0)):   # fence below a token, counts, holder 0
        b = bytearray(img)
        struct.pack_into("<I", b, off, val)
        _refused(t, bytes(b))
    b = bytearray(img)
    b[12 + 13] = ord("c")  # names no longer ascending
    _refused(t, bytes(b))
    t.restore(bytes(img))
    assert t.fence == 2 and sorted(t.locks) == [b"a", b"b"]
