"""tools/board/bootpart.py: `# mpraft: boot` defs moved into a boot module."""
import os
import sys
import types

import pytest

from paths import ROOT

sys.path.insert(0, os.path.join(ROOT, "tools", "board"))
import bootpart  # noqa: E402

SRC = '''import struct

_SCALE = 3


def helper(x):
    return x + 1


class Box:
    """A box."""

    def __init__(self, size, *more, name="box", **extra):  # mpraft: boot
        """Make it."""
        # a comment
        self.size = helper(size) * _SCALE + struct.calcsize("<I")
        self.more = more
        self.name = name
        self.extra = extra

    def grow(self):
        self.size += 1
        return self.size


def build(n=2):  # mpraft: boot
    return Box(n, 7, name="b", k=1)
'''


def _load(name, text, boot_src):
    """Run the rewritten module and its boot module as CPython modules."""
    mod = types.ModuleType(name)
    sys.modules[name] = mod
    boot = types.ModuleType(name + "__boot")
    sys.modules[name + "__boot"] = boot
    exec(compile(text, name, "exec"), mod.__dict__)
    exec(compile(boot_src, name + "__boot", "exec"), boot.__dict__)
    return mod


def test_marked_defs_move_and_behave_the_same():
    text, boot_src = bootpart.split("bootdemo", SRC)
    assert "self.size = helper" not in text and "self.size = helper" in boot_src
    assert '"""Make it."""' in text                    # the docstring stays with the stub
    assert "from bootdemo__boot import _boot_Box___init__" in text
    assert "from bootdemo import Box, _SCALE, helper" in boot_src and "import struct" in boot_src
    try:
        mod = _load("bootdemo", text, boot_src)
        b = mod.build()
        orig = {}
        exec(compile(SRC, "orig", "exec"), orig)
        o = orig["build"]()
        assert (b.size, b.more, b.name, b.extra) == (o.size, o.more, o.name, o.extra)
        assert b.grow() == o.grow()
        assert mod.Box(1).name == "box"                 # defaults stay in the stub
    finally:
        sys.modules.pop("bootdemo", None)
        sys.modules.pop("bootdemo__boot", None)


def test_a_module_without_marks_is_unchanged():
    assert bootpart.split("m", "def f():\n    return 1\n") == ("def f():\n    return 1\n", None)


@pytest.mark.parametrize("src,why", [
    ("def f():  # mpraft: boot\n    return lambda: 1\n", "nest a def, class or lambda"),
    ("X = 0\ndef f():  # mpraft: boot\n    global X\n    X = 1\n", "rebind globals"),
    ("class A:\n    def f(self):  # mpraft: boot\n        return super().f()\n", "super"),
    ('def f():  # mpraft: boot\n    return """a\nb"""\n', "string token over several lines"),
    ("def f(): return 1  # mpraft: boot\n", "body on the lines below"),
    ("def f():\n    x = 1  # mpraft: boot\n    return x\n", "marks 1 lines but only 0"),
    ("def f():\n    def g():  # mpraft: boot\n        return 1\n    return g\n", "marks 1"),
])
def test_what_cannot_move_is_refused_with_the_line(src, why):
    with pytest.raises(bootpart.BootPartError, match=why):
        bootpart.split("m", src)
