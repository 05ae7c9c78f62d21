"""tools/board/messages.py: error messages moved out of the resident module."""
import os
import subprocess
import sys

import pytest

from paths import ROOT

sys.path.insert(0, os.path.join(ROOT, "tools", "board"))
import messages  # noqa: E402

SRC = '''
class E(Exception):
    pass


def bad_size(name, n):
    raise E("file %s is %d bytes; restore or delete it" % (name, n))


def bare():
    raise E("a message without any arguments")


def single(x):
    raise E("one argument, not a tuple: %r" % x)


def joined(a):
    raise E("a message written over two lines "
            "of source, %d" % a)


def short():
    raise E("short")


def fstring(a):
    raise E(f"an f-string message stays as it is {a}")


def again(n):
    raise E("file %s is %d bytes; restore or delete it" % ("again", n))


def not_raised():
    return "a long string that is not raised stays"
'''


def rewrite(tmp_path, src=SRC, root="fw"):
    text, parts, table = messages.externalize(src, root)
    for stem, part in parts.items():
        (tmp_path / (stem + ".py")).write_text(part)
    (tmp_path / (root + ".py")).write_text(text)
    return text, parts, table


def call(tmp_path, expr, root="fw", interpreter=sys.executable):
    code = ("import sys; sys.path.insert(0, %r)\nimport %s as m\ntry:\n    %s\n"
            "except m.E as e:\n    print(str(e))\n    print(sorted(k for k in sys.modules "
            "if '_msg' in k))\n" % (str(tmp_path), root, expr))
    r = subprocess.run([interpreter, "-c", code], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return r.stdout.splitlines()


def test_long_raised_messages_move_to_parts_and_read_back_the_same(tmp_path):
    text, parts, table = rewrite(tmp_path)
    assert table == ["file %s is %d bytes; restore or delete it",
                     "a message without any arguments",
                     "one argument, not a tuple: %r",
                     "a message written over two lines of source, %d"]
    for t in table:
        assert t not in text
    assert "short" in text and "an f-string message" in text and "is not raised stays" in text
    assert list(parts) == ["fw_msg0"]
    assert call(tmp_path, "m.bad_size('raft.hs', 5)") == [
        "file raft.hs is 5 bytes; restore or delete it", "[]"]
    assert call(tmp_path, "m.bare()") == ["a message without any arguments", "[]"]
    assert call(tmp_path, "m.single([1, 2])")[0] == "one argument, not a tuple: [1, 2]"
    assert call(tmp_path, "m.single(None)")[0] == "one argument, not a tuple: None"
    assert call(tmp_path, "m.joined(7)")[0] == "a message written over two lines of source, 7"
    assert call(tmp_path, "m.again(9)")[0] == "file again is 9 bytes; restore or delete it"


def test_the_same_on_micropython(tmp_path):
    mp = os.path.join(ROOT, ".venv", "bin", "micropython")
    if not os.path.exists(mp):
        pytest.skip("no micropython in .venv (make venv)")
    rewrite(tmp_path)
    assert call(tmp_path, "m.bad_size('raft.hs', 5)", interpreter=mp) == [
        "file raft.hs is 5 bytes; restore or delete it", "[]"]
    assert call(tmp_path, "m.joined(7)", interpreter=mp)[0] == (
        "a message written over two lines of source, 7")


def test_parts_hold_at_most_per_part_messages(tmp_path):
    n = messages.PER_PART * 2 + 3
    src = "".join('def f%d(x):\n    raise ValueError("message number %d of many: %%r" %% x)\n'
                  % (i, i) for i in range(n))
    text, parts, table = rewrite(tmp_path, src)
    assert len(table) == n and sorted(parts) == ["fw_msg0", "fw_msg1", "fw_msg2"]
    code = ("import sys; sys.path.insert(0, %r)\nimport fw\nfor i in (0, %d, %d):\n"
            "    try:\n        getattr(fw, 'f%%d' %% i)('x')\n"
            "    except ValueError as e:\n        print(e)\n" % (str(tmp_path), n - 1, n - 1))
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    last = "message number %d of many: 'x'" % (n - 1)
    # The second read of the last message comes from the one kept in RAM.
    assert r.stdout.splitlines() == ["message number 0 of many: 'x'", last, last], r.stderr


def test_a_missing_part_still_names_the_message(tmp_path):
    rewrite(tmp_path)
    os.remove(str(tmp_path / "fw_msg0.py"))
    assert call(tmp_path, "m.bad_size('raft.hs', 5)")[0] == (
        "error 0 of fw_msg: (('raft.hs', 5),)")


def test_nothing_to_move_leaves_the_text_alone():
    src = "def f():\n    raise ValueError('short')\n"
    assert messages.externalize(src, "fw") == (src, {}, [])


def test_a_taken_helper_name_is_an_error():
    with pytest.raises(ValueError, match="_msg"):
        messages.externalize("_msg = 1\ndef f():\n    raise ValueError('a long message here!!')\n",
                             "fw")
