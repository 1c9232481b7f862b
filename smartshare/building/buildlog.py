"""Following an engine's build stream: log lines, the image id, what the build made in
the engine, and failures that say why."""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NoReturn

from smartshare.errors import BuildError

LogCallback = Callable[[str], None]

_STEP_OUTPUT_LINES = 12
_BUILT = re.compile(r"^Successfully built ([0-9a-f]+)$")
_STEP_RESULT = re.compile(r"^---> ([0-9a-f]{12,64})$")
_RUNNING_IN = re.compile(r"^---> Running in ([0-9a-f]{12,64})$")
_REMOVED = re.compile(r"^Removing intermediate container ([0-9a-f]{12,64})$")


@dataclass
class BuildTrace:
    """What a build made in the engine, as its log tells: removed again if it fails.

    ``images`` are the steps' results in order, without the images a ``FROM``
    names and the steps answered from the cache (those were there before);
    ``containers`` are the steps' containers the engine has not yet said it removed.
    """

    images: list[str] = field(default_factory=list)
    containers: list[str] = field(default_factory=list)


class _Lines:
    """Reassembles log lines: the engine splits them across chunks at will."""

    def __init__(self, on_line: Callable[[str], None]) -> None:
        self._pending = ""
        self._on_line = on_line

    def feed(self, text: str) -> None:
        *complete, self._pending = (self._pending + text).split("\n")
        for line in complete:
            self._emit(line)

    def flush(self) -> None:
        pending, self._pending = self._pending, ""
        self._emit(pending)

    def _emit(self, raw: str) -> None:
        # A carriage return redraws a progress line: only its last state matters.
        states = [part.strip() for part in raw.split("\r") if part.strip()]
        if states:
            self._on_line(states[-1])


def follow_build(
    chunks: Iterable[Mapping[str, Any]],
    name: str,
    dockerfile: str,
    on_log: LogCallback | None,
    *,
    made: BuildTrace | None = None,
) -> str:
    """Consume the build stream; return the image id or raise BuildError at the first error.

    ``made`` is filled in as the stream goes, also when it fails or is cut.
    """
    step: str | None = None
    output: deque[str] = deque(maxlen=_STEP_OUTPUT_LINES)
    image_id: str | None = None
    made = made if made is not None else BuildTrace()
    reused = False  # the current step's result was there before the build

    def on_line(line: str) -> None:
        nonlocal step, image_id, reused
        if on_log is not None:
            on_log(line)
        if line.startswith("Step "):
            step = line
            output.clear()
            reused = step.partition(" : ")[2].upper().startswith("FROM")
        elif not line.startswith(("--->", "Removing intermediate container")):
            output.append(line)
        elif line == "---> Using cache":
            reused = True
        elif running := _RUNNING_IN.match(line):
            made.containers.append(running.group(1))
        elif removed := _REMOVED.match(line):
            if removed.group(1) in made.containers:
                made.containers.remove(removed.group(1))
        elif (result := _STEP_RESULT.match(line)) and not reused:
            made.images.append(result.group(1))
        built = _BUILT.match(line)
        if built and image_id is None:
            image_id = built.group(1)

    lines = _Lines(on_line)
    for chunk in chunks:
        if "error" in chunk or "errorDetail" in chunk:
            lines.flush()
            detail = chunk.get("errorDetail") or {}
            message = str(detail.get("message") or chunk.get("error") or "unknown error").strip()
            _raise_build_failure(name, dockerfile, step, message, list(output))
        if "stream" in chunk:
            lines.feed(str(chunk["stream"]))
        aux = chunk.get("aux")
        if isinstance(aux, Mapping) and aux.get("ID"):
            image_id = str(aux["ID"])
    lines.flush()
    if image_id is None:
        raise BuildError(
            f"building {name}: the engine ended the build without reporting an image",
            hint="retry; if it persists, check the engine's log",
        )
    return image_id


def _raise_build_failure(
    name: str, dockerfile: str, step: str | None, message: str, output: list[str]
) -> NoReturn:
    where = f" at {_step_label(step)}" if step else ""
    text = f"building {name} failed{where}: {message}"
    # The step's own output usually says why (a compiler error, a missing file).
    shown = [line for line in output if line != message][-8:]
    if shown:
        text += "\nlast output of the step:\n" + "\n".join(f"  {line}" for line in shown)
    raise BuildError(text, hint=build_hint(message, step=step, dockerfile=dockerfile))


def _step_label(step: str) -> str:
    # "Step 4/4 : RUN make" -> "step 4/4 (RUN make)"
    head, _, instruction = step.partition(" : ")
    return f"{head.lower()} ({instruction})" if instruction else step


def build_hint(message: str, *, step: str | None, dockerfile: str | None) -> str:
    where = dockerfile or "the Dockerfile"
    if "BuildKit" in message:
        return (
            f"{where} uses BuildKit-only syntax; smartshare talks to the engine's classic "
            "builder, so rewrite that step without it"
        )
    if "parse error" in message or "unknown instruction" in message:
        return f"fix the syntax of {where}"
    if step is not None and step.partition(" : ")[2].upper().startswith("FROM"):
        return (
            "the base image could not be found or pulled: check its name, the network and "
            "`docker login`, or load it into the engine beforehand (`docker pull`/`docker load`)"
        )
    return f"see the build log (rerun with -v to see all of it) and fix the failing step in {where}"
