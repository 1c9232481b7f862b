"""The one file lock: ``flock`` on a lock file, for threads and processes alike.

The workspace's run lock (one run at a time) and each git mirror's lock (one
fetch at a time) are both this lock; they differ only in how long they wait
and in the errors they raise, which the caller supplies.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

POLL_SECONDS = 0.05


@contextmanager
def exclusive_lock(
    path: Path,
    *,
    wait: float,
    busy: Callable[[], Exception],
    unusable: Callable[[OSError], Exception],
) -> Iterator[None]:
    """Hold an exclusive lock on the file ``path`` (created if missing) while in the block.

    Waits up to ``wait`` seconds (0: not at all) for another holder, then
    raises ``busy()``; raises ``unusable(error)`` when the file cannot be
    opened.  Closing the descriptor releases the lock, also if the process
    dies.  Errors raised inside the block pass through untouched.
    """
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise unusable(exc) from exc
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise busy() from None
                time.sleep(POLL_SECONDS)
        yield
    finally:
        os.close(fd)
