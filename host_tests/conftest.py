import os
import sys

# tools/paths.py owns the import roots; see there.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "tools"))
import paths  # noqa: E402

paths.setup(tests=True)


# The paper tests run once per cluster backend (tools/simulator/raftnet.py):
# the harness's own Ready loop over the core, and the engine that ships.
import pytest  # noqa: E402

_PAPER = "test_paper_"
_counts = {}


def pytest_generate_tests(metafunc):
    if "backend" in metafunc.fixturenames and metafunc.module.__name__.startswith(_PAPER):
        import raftnet
        metafunc.parametrize("backend", raftnet.BACKENDS, indirect=True)


@pytest.fixture(autouse=True)
def backend(request):
    """The paper tests' backend; "core" for every other test."""
    import raftnet
    name = getattr(request, "param", "core")
    raftnet.BACKEND = name
    yield name
    raftnet.BACKEND = "core"


def pytest_runtest_logreport(report):
    if report.when == "call" and report.nodeid.split("::")[0].rsplit("/", 1)[-1].startswith(_PAPER):
        b = report.nodeid.rsplit("[", 1)[-1].rstrip("]")
        k = (b, report.outcome)
        _counts[k] = _counts.get(k, 0) + 1


def pytest_terminal_summary(terminalreporter):
    if not _counts:
        return
    for b in sorted(set(k[0] for k in _counts)):
        terminalreporter.write_line("paper tests on backend %s: %s" % (b, ", ".join(
            "%d %s" % (_counts[k], k[1]) for k in sorted(_counts) if k[0] == b)))
