"""Give the C heap's free pages back to the kernel once the engine is loaded.

Why: loading an ONNX graph reads the file (86 MB for e5-small) and builds the session's
weights beside it, and the tokenizer's JSON parse allocates about 100 MB more for a
moment. glibc keeps what they free inside the heap (below live blocks it cannot shrink
the heap past), so a loaded service held 70 to 115 MiB it never used again; how much
varied from start to start. `malloc_trim(0)` returns those pages (about 10 ms, once).
Elsewhere (musl, macOS) there is no such call and nothing is done.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
from functools import cache
from typing import Any

log = logging.getLogger(__name__)


@cache
def _libc() -> Any:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        trim = libc.malloc_trim
    except (OSError, AttributeError, TypeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return libc


def release_free_heap() -> bool:
    """Return the C heap's free pages to the kernel (glibc's malloc_trim); False where the
    C library has no such call. Live memory is untouched: nothing gets slower after it."""
    libc = _libc()
    if libc is None:
        return False
    libc.malloc_trim(0)
    return True
