"""Write the timeline of a run as one self-contained HTML page.

    import page
    page.write("out.html", data)      # data: simrec.SimRecorder.data() or runlog.load()

The page is viewer.html with viewer.css, viewer.js and the data (JSON)
inlined: no network, no external script, style or font. The data's shape is
in docs/timeline.md. Portable (the simulator writes pages under MicroPython
too): string operations and json only.
"""
import json

_HERE = __file__[:__file__.rfind("/") + 1]


def _json_safe(s):
    # Inside <script>, "</script" or "<!--" in a string would end or confuse
    # the element: every "<" (found only inside JSON strings) becomes the
    # same character escaped.
    return s.replace("<", "\\u003c")


def _dump(f, obj):
    """json.dumps(obj) written in pieces: a big run's data is megabytes,
    more than a MicroPython heap holds as one string."""
    if isinstance(obj, dict):
        f.write("{")
        first = True
        for k in sorted(obj):  # sorted: the same page on every interpreter
            if not first:
                f.write(",")
            first = False
            f.write(_json_safe(json.dumps(str(k))))
            f.write(":")
            _dump(f, obj[k])
        f.write("}")
    elif hasattr(obj, "chunks") or (isinstance(obj, (list, tuple)) and (
            len(obj) > 32 or [x for x in obj if hasattr(x, "chunks")])):
        # Long lists, and simrec.Rows (kept in chunks), item by item.
        f.write("[")
        first = True
        for x in obj:
            if not first:
                f.write(",")
            first = False
            _dump(f, x)
        f.write("]")
    else:
        f.write(_json_safe(json.dumps(obj, separators=(",", ":"))))


def _copy(f, name):
    # In small reads: MicroPython's heap, fragmented by the run just
    # recorded, may have no room for the whole file as one string.
    with open(_HERE + name) as src:
        while True:
            b = src.read(2048)
            if not b:
                return
            f.write(b)


def write_to(f, data):
    """The page into the text stream f: viewer.html with its markers
    /*CSS*/, /*JS*/ and /*DATA*/ replaced (viewer.js holds no "</script":
    host_tests check it)."""
    with open(_HERE + "viewer.html") as tpl:
        lines = tpl.read().split("\n")
    for line in lines:
        for mark, what in (("/*CSS*/", "viewer.css"), ("/*JS*/", "viewer.js"),
                           ("/*DATA*/", None)):
            k = line.find(mark)
            if k >= 0:
                f.write(line[:k])
                if what is None:
                    _dump(f, data)
                else:
                    _copy(f, what)
                line = line[k + len(mark):]
                break
        f.write(line)
        f.write("\n")


def html(data):
    """The page as a string."""
    import io
    f = io.StringIO()
    write_to(f, data)
    return f.getvalue()


def write(path, data):
    """Write the page; returns its size in bytes."""
    with open(path, "w") as f:
        write_to(f, data)
    import os
    return os.stat(path)[6]
