from setuptools import setup

# The C core is built against Python's stable ABI (cffi compiles with Py_LIMITED_API, hence
# confd_ha/_core.abi3.so), so one wheel, tagged cp39-abi3, serves CPython 3.9 and later.
setup(cffi_modules=["build_ffi.py:ffibuilder"],
      options={"bdist_wheel": {"py_limited_api": "cp39"}})
