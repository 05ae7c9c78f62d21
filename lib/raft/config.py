"""Core configuration with defaults and validation (errors name the fix)."""
from raft.errors import ConfigError

# Read-only request handling (etcd ReadOnlyOption).
READ_SAFE = 0       # ReadIndex: confirm leadership with a heartbeat round.
READ_LEASE = 1      # Serve while the check-quorum lease holds.


class Config:
    def __init__(self, id, voters, election_tick=10, heartbeat_tick=1, pre_vote=True,  # mpraft: boot
                 check_quorum=True, max_inflight=32, max_size_per_msg=1300,
                 ring_capacity=1024, max_entry_bytes=1024, read_only=READ_SAFE,
                 lease_drift_ticks=1, max_apply_bytes=0, snapshot_chunk=1200,
                 learners=(), inc=0, incs=None):
        self.id = id
        self.voters = tuple(sorted(voters))
        self.learners = tuple(sorted(learners))
        # Minimum election timeout in ticks; the randomized timeout lies in
        # [election_tick, 2 * election_tick).
        self.election_tick = election_tick
        self.heartbeat_tick = heartbeat_tick
        self.pre_vote = pre_vote
        self.check_quorum = check_quorum
        self.max_inflight = max_inflight
        self.max_size_per_msg = max_size_per_msg
        self.ring_capacity = ring_capacity
        self.max_entry_bytes = max_entry_bytes
        self.read_only = read_only
        self.lease_drift_ticks = lease_drift_ticks
        self.max_apply_bytes = max_apply_bytes
        self.snapshot_chunk = snapshot_chunk
        # This node's incarnation (from its storage's identity; 0 = unbound)
        # and the bootstrap members' ones {id: inc} (the cluster file's
        # "incs"), used while storage holds no snapshot (docs/incarnation.md).
        self.inc = inc
        self.incs = incs or {}

    def validate(self):  # mpraft: boot
        if not isinstance(self.id, int) or self.id <= 0 or self.id > 0xFFFF:
            raise ConfigError("config: id must be an integer in 1..65535, got %r" % (self.id,))
        # self.id may be outside voters and learners: a node that will join
        # through a membership change (or was removed) runs without ever
        # campaigning until the leader's log or snapshot adds it.
        for v in self.voters:
            if not isinstance(v, int) or v <= 0 or v > 0xFFFF:
                raise ConfigError("config: peer id %r must be an integer in 1..65535" % (v,))
        if self.heartbeat_tick <= 0:
            raise ConfigError("config: heartbeat_tick must be >= 1, got %d" % self.heartbeat_tick)
        if self.election_tick <= self.heartbeat_tick:
            raise ConfigError("config: election_tick (%d) must be greater than heartbeat_tick (%d)"
                              % (self.election_tick, self.heartbeat_tick))
        if self.max_inflight <= 0:
            raise ConfigError("config: max_inflight must be >= 1")
        if self.ring_capacity < 4:
            raise ConfigError("config: ring_capacity must be >= 4, got %d" % self.ring_capacity)
        if self.max_entry_bytes + 7 > self.max_size_per_msg:
            raise ConfigError("config: max_entry_bytes (%d) + 7 must fit max_size_per_msg (%d)"
                              % (self.max_entry_bytes, self.max_size_per_msg))
        if self.read_only not in (READ_SAFE, READ_LEASE):
            raise ConfigError("config: read_only must be READ_SAFE (0) or READ_LEASE (1)")
        if self.read_only == READ_LEASE and not self.check_quorum:
            raise ConfigError("config: lease reads need check_quorum=True")
        if not 0 <= self.lease_drift_ticks < self.election_tick:
            raise ConfigError("config: lease_drift_ticks must be in 0..election_tick-1")
        return self
