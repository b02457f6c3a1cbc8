"""Finding the compiled C core (``confd_ha._core``) when the package is imported.

An installed package has its core beside its modules. A source tree has one only once it has
been built in place (``python build_ffi.py`` or ``pip install -e .``). A clone in which
``pip install .`` was run has none, yet Python imports the clone's ``confd_ha/`` first when it
is started in the clone's root (the current directory comes first on ``sys.path``). Then the
core of the installed copy further down ``sys.path`` is used -- the version check below makes
sure that it was built from the same version. Whatever cannot be found or does not match
fails with an ``ImportError`` that says which command fixes it.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import os
import sys
from typing import Any, List, Optional, Tuple


def _source_root(package_dir: str) -> Optional[str]:
    """The source tree holding ``package_dir``, or None for an installed package."""
    root = os.path.dirname(package_dir)
    return root if os.path.isfile(os.path.join(root, "build_ffi.py")) else None


def installed_copy(package_dir: str) -> Optional[str]:
    """The directory of another ``confd_ha`` package on ``sys.path`` that has a compiled core."""
    for entry in sys.path:
        candidate = os.path.join(entry or os.curdir, "confd_ha")
        try:
            if not os.path.isdir(candidate) or os.path.samefile(candidate, package_dir):
                continue
        except OSError:
            continue
        spec = importlib.machinery.PathFinder.find_spec("_core", [candidate])
        if spec is not None and isinstance(spec.loader, importlib.machinery.ExtensionFileLoader):
            return candidate
    return None


def load(package_path: List[str], version: str) -> Tuple[Any, Any]:
    """``(ffi, lib)`` of the core for the package whose ``__path__`` is ``package_path`` and
    whose version is ``version``. When an installed copy's core is used, that copy's directory
    is appended to ``package_path``: the source tree's modules still come first, so only what
    the tree lacks -- the compiled core -- is taken from it."""
    package_dir = os.path.abspath(package_path[0])
    root = _source_root(package_dir)
    borrowed = None
    try:
        core = importlib.import_module("confd_ha._core")
    except ModuleNotFoundError as exc:
        if exc.name != "confd_ha._core":
            raise
        borrowed = installed_copy(package_dir) if root is not None else None
        if borrowed is None:
            raise ImportError(_missing(package_dir, root)) from exc
        package_path.append(borrowed)
        core = importlib.import_module("confd_ha._core")
    except ImportError as exc:
        raise ImportError("confd_ha's compiled core %s cannot be loaded (%s): %s"
                          % (_core_file(package_dir), exc, _rebuild(root))) from exc
    core_version = core.ffi.string(core.lib.chd_version()).decode()
    if core_version != version:
        if borrowed is not None:
            raise ImportError(
                "confd_ha is imported from the source tree %s (version %s), which has no "
                "compiled core; the core of the installed copy in %s is version %s. Run "
                "'pip install .' in %s again, or build the core in place there with "
                "'pip install -e .'" % (root, version, borrowed, core_version, root))
        raise ImportError("confd_ha's compiled core %s is version %s but the package is %s: %s"
                          % (_core_file(package_dir), core_version, version, _rebuild(root)))
    return core.ffi, core.lib


def _core_file(package_dir: str) -> str:
    spec = importlib.machinery.PathFinder.find_spec("_core", [package_dir])
    return spec.origin if spec is not None and spec.origin else package_dir


def _rebuild(root: Optional[str]) -> str:
    if root is not None:
        return ("rebuild it in place with 'pip install -e .' (or 'python build_ffi.py') in %s"
                % root)
    return ("reinstall confd-ha ('pip install --force-reinstall' with the wheel or source "
            "directory it was installed from)")


def _missing(package_dir: str, root: Optional[str]) -> str:
    if root is None:
        return ("confd_ha's compiled core (confd_ha._core) is missing from %s: %s"
                % (package_dir, _rebuild(None)))
    return ("confd_ha is imported from the source tree %s, whose C core is not compiled, and "
            "this Python (%s) has no installed confd_ha to take it from. Either install the "
            "package into this Python's environment ('%s -m pip install .' in %s; the "
            "README's set-up does it in a venv), or build the core in place ('%s -m pip "
            "install -e .' there, or 'python build_ffi.py')"
            % (root, sys.executable, sys.executable, root, sys.executable))
