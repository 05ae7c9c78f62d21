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


def _read(name):
    with open(_HERE + name) as f:
        return f.read()


def _json_safe(s):
    # Inside <script>, "</script" or "<!--" in a string would end or confuse
    # the element: every "<" (found only inside JSON strings) becomes the
    # same character escaped.
    return s.replace("<", "\\u003c")


def html(data):
    """The page as a string."""
    body = json.dumps(data, separators=(",", ":"))
    tpl = _read("viewer.html")
    # Replaced in this order so a marker inside the data is never touched.
    tpl = tpl.replace("/*CSS*/", _read("viewer.css"), 1)
    js = _read("viewer.js")
    if "</script" in js.lower():
        raise ValueError("page: viewer.js must not contain </script")
    tpl = tpl.replace("/*JS*/", js, 1)
    i = tpl.find("/*DATA*/")
    return tpl[:i] + _json_safe(body) + tpl[i + 8:]


def write(path, data):
    """Write the page; returns its size in bytes."""
    s = html(data)
    with open(path, "w") as f:
        f.write(s)
    return len(s)
