"""Typed errors of the pure core. Callers catch these by class, never by text."""


class RaftError(Exception):
    pass


class ProposalDropped(RaftError):
    """The proposal was not appended (not leader, leadership transfer, ...)."""


class NotLeader(ProposalDropped):
    """Only the leader accepts proposals; args[0] is the known leader (0 if none)."""


class LogFull(ProposalDropped):
    """Back-pressure: uncommitted entries would overflow the in-RAM ring."""


class EntryTooLarge(ProposalDropped):
    """An entry larger than max_entry_bytes cannot be replicated in one datagram."""


class Compacted(RaftError):
    """The requested index is older than the storage's first index (use the snapshot)."""


class Unavailable(RaftError):
    """The requested index is newer than the storage's last index."""


class DecodeError(RaftError):
    """Bytes that do not decode to a valid message, entry or record. Count and drop."""


class ConfigError(RaftError):
    """A configuration that cannot work; the message names the problem and the fix."""


class StorageError(RaftError):
    """Stable storage cannot do what was asked; the message names the file and the fix."""


class CorruptStorage(StorageError):
    """A record that was durably written no longer reads back (not a torn last write)."""


class StorageFull(StorageError):
    """The log ring has no free slot: create a snapshot and compact first."""


class OverLimit(RaftError):
    """Replicated state this node cannot hold (its capacity is below the
    cluster's limits). Not corrupt: the node stops applying and reports it.
    args: (where: "snapshot", "log" or "entry", count needed, "keys",
    "sessions" or "bytes", count this node holds)."""
