"""raftctl's client sessions, kept across calls in a small state file.

A raftkv write needs a client session (thesis 6.3: the REGISTER entry's
index is the client id, every command carries the next sequence number).
Registering on every CLI call put one session per call into the cluster's
bounded table and evicted long-lived device clients (issue 12). So raftctl
keeps one session per cluster and reuses it:

    $MPRAFT_STATE_DIR, else $XDG_STATE_HOME/mpraft, else ~/.local/state/mpraft
      <cluster id>-<key hash>.<slot>        {"cid": client id, "seq": last seq reserved}
      <cluster id>-<key hash>.<slot>.lock   held with flock while a call uses the slot

A session allows one command in flight (raftkv's rule: the table caches only
the last result), so concurrent raftctl processes never share one: each
takes the first free slot of SLOTS (a non-blocking flock), waiting for one
while all are busy. The seq of a write is reserved on disk before the
command is sent, so neither a crash nor another process can ever send a
different command under a seq already used. Reads use no session.

Host-only (fcntl): raftctl runs on a computer, never on a board.
"""
import fcntl
import hashlib
import json
import os
import time

SLOTS = 4


def state_dir():
    d = os.environ.get("MPRAFT_STATE_DIR")
    if d:
        return d
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"),
                                                            ".local", "state")
    return os.path.join(base, "mpraft")


class SessionStore:
    """The saved sessions of one cluster (cluster id and key name it)."""

    def __init__(self, cluster_id, key, directory=None, slots=SLOTS):
        tag = hashlib.sha256(str(key).encode()).hexdigest()[:8]
        self.base = os.path.join(directory or state_dir(), "%d-%s" % (cluster_id, tag))
        self.slots = slots
        self._fd = None
        self._path = None

    def acquire(self, timeout_s):
        """Lock a free slot, waiting up to timeout_s; False if none came free
        (or the state folder is unusable): the caller then uses a session of
        its own that is not kept."""
        try:
            os.makedirs(os.path.dirname(self.base), exist_ok=True)
        except OSError:
            return False
        deadline = time.monotonic() + timeout_s
        while True:
            for i in range(self.slots):
                path = "%s.%d" % (self.base, i)
                try:
                    fd = os.open(path + ".lock", os.O_RDWR | os.O_CREAT, 0o600)
                except OSError:
                    return False
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    os.close(fd)
                    continue
                self._fd, self._path = fd, path
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)

    def release(self):
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = self._path = None

    def load(self):
        """(client id, last seq reserved) of the locked slot; (0, 0) if none."""
        try:
            with open(self._path) as f:
                s = json.load(f)
            cid, seq = int(s["cid"]), int(s["seq"])
            if cid > 0 and seq >= 0:
                return cid, seq
        except (OSError, ValueError, KeyError, TypeError):
            pass
        return 0, 0

    def save(self, cid, seq):
        """Durably record the slot's session (write, flush, fsync, rename)."""
        tmp = self._path + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"cid": cid, "seq": seq}, f)
            f.flush()
            os.fsync(f.fileno())
        os.rename(tmp, self._path)


def write(client, store, op, timeout_s):
    """Run op() (a client write: put, delete, cas) under a kept session.

    The seq op will use is reserved on disk first. A session the cluster
    evicted meanwhile (SESSION_EXPIRED: the write was not applied) is
    registered again and the write sent once more.
    """
    from raftio.client import SessionExpired
    if not store.acquire(timeout_s):
        return op()  # a session of its own, registered by the client
    try:
        client.cid, client.seq = store.load()
        for attempt in (1, 2):
            if not client.cid:
                client.register()
                store.save(client.cid, 0)
            store.save(client.cid, client.seq + 1)
            try:
                return op()
            except SessionExpired:
                store.save(0, 0)
                if attempt == 2:
                    raise
    finally:
        store.release()
