"""Console entry points of the pip-installed host tools (pyproject.toml [project.scripts]).

    raftctl ...          tools/ops/raftctl.py
    mpraft-cluster ...   tools/ops/cluster.py

pip installs the repository's lib/, tools/ and boards/ as the folder
mpraft_host/; these functions give the scripts the import roots their
bootstrap would (tools/paths.py) and call their main(). In a checkout, run
the scripts themselves. Host-only (CPython).
"""
import os
import sys


def _setup():
    tools = os.path.dirname(os.path.abspath(__file__))
    if tools not in sys.path:
        sys.path.insert(0, tools)
    import paths
    paths.setup()


def raftctl():
    _setup()
    import raftctl as tool
    sys.exit(tool.main(sys.argv[1:]))


def cluster():
    _setup()
    import cluster as tool
    sys.exit(tool.main(sys.argv[1:]))
