"""package.json (mip) and manifest.py (freezing) name every module a board gets (issue 11 item 6).

The shipped set is found here by walking lib/ (every .py without the
host-only mark) plus firmware/mpraft.py, independently of
tools/board/pkgfiles.py, which writes both files. manifest.py is executed
as MicroPython's tools/manifestfile.py does, with package/module/include/
require/metadata standing in, and every file it names must exist.
"""
import json
import os
import shutil

import build
import pkgfiles
from paths import ROOT


def shipped_by_walk():
    out = set()
    for dirpath, dirnames, filenames in os.walk(os.path.join(ROOT, "lib")):
        dirnames[:] = [d for d in dirnames if d != "__pycache__"]
        for n in filenames:
            p = os.path.join(dirpath, n)
            if n.endswith(".py") and not build._host_only(p):
                out.add(os.path.relpath(p, ROOT).replace(os.sep, "/"))
    out.add("firmware/mpraft.py")
    return out


def load_package_json():
    with open(os.path.join(ROOT, "package.json")) as f:
        return json.load(f)


def run_manifest(path):
    """(files named as (source, destination), metadata) of a freeze manifest."""
    named = []
    meta = {}
    here = os.path.dirname(path)

    # The signatures of MicroPython's tools/manifestfile.py.
    def package(package_path, files=None, base_path=".", opt=None):
        base = os.path.join(here, base_path, package_path)
        assert files is not None, "package %s: list its files (host-only ones stay out)" % (
            package_path)
        for n in files:
            named.append((os.path.join(base, n), package_path + "/" + n))

    def module(module_path, base_path=".", opt=None):
        assert module_path.endswith(".py"), module_path
        named.append((os.path.join(here, base_path, module_path), module_path))

    def metadata(**kw):
        meta.update(kw)

    def include(p, **kw):
        raise AssertionError("mpraft's manifest includes nothing: %r" % (p,))

    def require(name, **kw):
        raise AssertionError("mpraft needs no micropython-lib package: %r" % (name,))

    with open(path) as f:
        exec(f.read(), {"package": package, "module": module, "metadata": metadata,
                        "include": include, "require": require, "options": None})
    return named, meta


def test_package_json_lists_every_shipped_module_and_only_those():
    pj = load_package_json()
    assert sorted(pj) == ["deps", "description", "urls", "version"]
    srcs = [src for _, src in pj["urls"]]
    assert len(srcs) == len(set(srcs))
    missing = shipped_by_walk() - set(srcs)
    assert not missing, "package.json misses %s: python3 tools/board/pkgfiles.py --write" % (
        sorted(missing),)
    assert set(srcs) == shipped_by_walk()
    for dest, src in pj["urls"]:
        assert os.path.isfile(os.path.join(ROOT, src)), src
        # Into the board's /lib as the package layout the imports expect.
        assert dest == (src[4:] if src.startswith("lib/") else os.path.basename(src)), dest
    for host in ("lib/raft/memstorage.py", "lib/raftio/fakeflash.py", "lib/raftio/board.py"):
        assert host not in srcs


def test_manifest_names_existing_files_and_every_shipped_module():
    files, meta = run_manifest(os.path.join(ROOT, "manifest.py"))
    for src, dest in files:
        assert os.path.isfile(src), src
    named = set(os.path.relpath(src, ROOT).replace(os.sep, "/") for src, _ in files)
    assert named == shipped_by_walk()
    dests = sorted(dest for _, dest in files)
    assert dests == sorted(d for d, _ in load_package_json()["urls"])
    assert meta["version"] == load_package_json()["version"] == pkgfiles.VERSION


def test_versions_agree_with_pyproject():
    with open(os.path.join(ROOT, "pyproject.toml")) as f:
        lines = [ln.strip() for ln in f]
    assert 'version = "%s"' % pkgfiles.VERSION in lines


def test_the_committed_files_are_what_the_tool_writes():
    for name, text in pkgfiles.outputs().items():
        with open(os.path.join(ROOT, name)) as f:
            assert f.read() == text, "%s is stale: python3 tools/board/pkgfiles.py --write" % name
    assert pkgfiles.main([]) == 0


def test_a_new_module_makes_both_files_stale(tmp_path):
    # The tooth of the tests above: a module added to lib/ shows up in what
    # the tool writes, so the committed files no longer match.
    shutil.copytree(os.path.join(ROOT, "lib"), str(tmp_path / "lib"),
                    ignore=shutil.ignore_patterns("__pycache__"))
    os.makedirs(str(tmp_path / "firmware"))
    shutil.copy(os.path.join(ROOT, "firmware", "mpraft.py"), str(tmp_path / "firmware"))
    with open(str(tmp_path / "lib" / "raftkv" / "newsm.py"), "w") as f:
        f.write('"""A new state machine."""\n')
    with open(str(tmp_path / "lib" / "raftkv" / "hostsim.py"), "w") as f:
        f.write("# mpraft: host-only\n")
    out = pkgfiles.outputs(str(tmp_path))
    assert '["raftkv/newsm.py", "lib/raftkv/newsm.py"]' in out["package.json"]
    assert "    'newsm.py',\n" in out["manifest.py"]
    assert "hostsim" not in out["package.json"] + out["manifest.py"]
    for name, text in out.items():
        with open(os.path.join(ROOT, name)) as f:
            assert f.read() != text
