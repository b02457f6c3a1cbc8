"""Which confd_ha the benchmarks measure: this source tree's when its C core is built in place
(``python build_ffi.py``), otherwise the installed package."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def source_tree_has_core() -> bool:
    pkg = ROOT / "confd_ha"
    return (pkg / "__init__.py").is_file() and (
        any(pkg.glob("_core*.so")) or any(pkg.glob("_core*.pyd")))


def import_confd_ha(installed_only: bool = False):
    """The package from this source tree when its C core is built in place, else the
    installed one (``installed_only`` always takes the installed one)."""
    if not installed_only and source_tree_has_core() and str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    try:
        import confd_ha
    except ImportError as exc:
        raise SystemExit("cannot import confd_ha (%s): install it ('pip install .') or build "
                         "its C core in place ('python build_ffi.py')" % exc)
    return confd_ha
