"""mpraft applications: the generic exactly-once session layer
(``raftapp.session``) that turns an application machine into the engine's
state machine, and two small applications built on it, a replicated counter
(``raftapp.counter``) and a lock service with leases and fencing tokens
(``raftapp.lock``). See docs/apps.md."""
