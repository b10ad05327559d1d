"""Facts about this machine that more than one room checks requests against."""
from __future__ import annotations

import os


def physical_memory() -> int | None:
    """This machine's physical memory in bytes; None where the OS does not say (no sysconf: Windows)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, OSError, ValueError):
        return None
