# Type stub of the cffi-compiled C core (csrc/confd_ha_core.h describes its functions).
from typing import Any

ffi: Any
lib: Any
