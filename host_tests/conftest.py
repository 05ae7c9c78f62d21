import os
import sys

# tools/paths.py owns the import roots; see there.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "tools"))
import paths  # noqa: E402

paths.setup(tests=True)


# The paper tests and the cluster scenarios run once per cluster backend
# (tools/simulator/raftnet.py): the harness's own Ready loop over the core,
# and the engine that ships. The scenarios' slow subset on real processes
# (host_tests/ops/test_cluster_scenarios_processes.py) counts as backend
# "processes". The summary prints the count per suite and backend.
import pytest  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def _raftctl_state(tmp_path_factory):
    """raftctl keeps its client sessions in a state folder (tools/ops/ctlsession.py):
    the tests' go to a temporary one, never the user's home."""
    os.environ["MPRAFT_STATE_DIR"] = str(tmp_path_factory.mktemp("raftctl-state"))
    yield


_PAPER = "test_paper_"
_SCENARIOS = "test_cluster_scenarios"
_PROCESSES = "test_cluster_scenarios_processes"
_counts = {}


def _per_backend(modname):
    """Is this test module run once per raftnet backend?"""
    return modname.startswith(_PAPER) or modname == _SCENARIOS


def pytest_generate_tests(metafunc):
    if "backend" in metafunc.fixturenames and _per_backend(metafunc.module.__name__):
        import raftnet
        metafunc.parametrize("backend", raftnet.BACKENDS, indirect=True)


@pytest.fixture(autouse=True)
def backend(request):
    """The paper tests' and cluster scenarios' backend; "core" for every other test."""
    import raftnet
    name = getattr(request, "param", "core")
    raftnet.BACKEND = name
    yield name
    raftnet.BACKEND = "core"


def _suite(nodeid):
    """(suite, backend) of a test counted per backend, else None."""
    mod = nodeid.split("::")[0].rsplit("/", 1)[-1]
    if mod.endswith(".py"):
        mod = mod[:-3]
    if mod == _PROCESSES:
        return "cluster scenarios", "processes"
    if not _per_backend(mod) or "[" not in nodeid:
        return None
    b = nodeid.rsplit("[", 1)[-1].rstrip("]")
    return ("paper tests" if mod.startswith(_PAPER) else "cluster scenarios"), b


def pytest_runtest_logreport(report):
    if report.when != "call" and not (report.when == "setup" and report.outcome != "passed"):
        return
    s = _suite(report.nodeid)
    if s is not None:
        k = (s[0], s[1], report.outcome)
        _counts[k] = _counts.get(k, 0) + 1


def pytest_terminal_summary(terminalreporter):
    if not _counts:
        return
    for suite, b in sorted(set(k[:2] for k in _counts)):
        terminalreporter.write_line("%s on backend %s: %s" % (suite, b, ", ".join(
            "%d %s" % (_counts[k], k[2]) for k in sorted(_counts) if k[:2] == (suite, b))))
