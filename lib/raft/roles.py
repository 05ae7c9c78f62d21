"""Raft roles (etcd StateType), shared by core.py and its mixins.

Their own module so readonly.py and membership.py can test the role without
importing raft.core (a top-level import cycle, which tools/board/merge.py refuses).
raft.core re-exports every name here: importers keep `from raft.core import
LEADER`.
"""
try:
    from micropython import const
except ImportError:
    def const(x):
        return x

FOLLOWER = const(0)
CANDIDATE = const(1)
LEADER = const(2)
PRE_CANDIDATE = const(3)
# Indexed by role.
ROLE_NAMES = ("follower", "candidate", "leader", "pre-candidate")
