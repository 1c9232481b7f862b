"""What one template may cost to render: time, output and memory.

Templates come from another region; without limits ``{{ 'x' * 10**8 }}``
writes 100 MB and two nested ``range`` loops never end.  The limits are
enforced in the render worker (:mod:`.worker`, started by :mod:`.pool`):
output is counted as it is produced, memory is the worker's address space,
and time is the wall clock, watched by the parent, which stops the worker.
The settings file may change them (``render_limits:``, see
:mod:`smartshare.settings`).
"""

from __future__ import annotations

from dataclasses import dataclass

MIB = 1024 * 1024
# The worker itself (Python, Jinja, PyYAML) needs about 30 MiB of address space.
MIN_MEMORY_MIB = 128


@dataclass(frozen=True)
class RenderLimits:
    seconds: float = 10  # wall clock, per template
    output_bytes: int = 16 * MIB  # per template
    memory_bytes: int = 512 * MIB  # the worker's address space

    @property
    def output_mib(self) -> str:
        return format_mib(self.output_bytes)

    @property
    def memory_mib(self) -> str:
        return format_mib(self.memory_bytes)


def format_mib(size: int) -> str:
    return f"{size / MIB:g} MiB"
