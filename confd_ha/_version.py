"""The package version; build_ffi.py compiles the same string into the C core."""

__version__ = "0.1.0"
