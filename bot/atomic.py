"""Write a whole folder so readers see the old one or the new one, never half of each."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path


def replace_folder(destination: Path, fill: Callable[[Path], None]) -> Path:
    """Let `fill` write into a temporary sibling folder, then swap it in by rename.

    A crash or exception in `fill` leaves `destination` as it was and no temporary
    folder behind.
    """
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{destination.name}-", dir=destination.parent))
    old = destination.with_name(destination.name + ".old")
    try:
        fill(tmp)
        shutil.rmtree(old, ignore_errors=True)
        if destination.exists():
            destination.rename(old)
        tmp.rename(destination)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return destination
