import os
import sys

# tools/paths.py owns the import roots; see there.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "tools"))
import paths  # noqa: E402

paths.setup(tests=True)
