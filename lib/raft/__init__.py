# mpraft pure Raft core. See raft/rawnode.py for the ready/advance contract.
