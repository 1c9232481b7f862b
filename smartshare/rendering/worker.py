"""The render worker: a child process that renders templates under resource limits.

Started by :mod:`.pool` as ``python -m smartshare.rendering.worker MEMORY_BYTES``
with an empty environment; everything else, secrets included, comes through
its stdin.  It limits its own address space (``RLIMIT_AS``) and, before each
template, its CPU time (``RLIMIT_CPU``: the kernel stops it); the parent
watches the wall clock and stops it too.  Output is counted while the
template produces it.

Protocol: lines of JSON.  The worker writes ``{"ready": true}`` once it has
started; then for each request (a templates folder, template names, the
context, the names of the secret parameters, whether it is a runtime render,
the limits) one line per template, ``{"content": TEXT}`` or
``{"error": MESSAGE, "hint": HINT}``, stopping at the first error.  After an
error marked ``"retire": true`` (memory, recursion) it exits, so that no
render runs in a process that may be in a bad state.  A request of ``"kind":
"strings"`` renders the manifest strings in ``texts`` (build arguments) as an
image render, one answer each; one of ``"kind": "runtime-strings"`` renders
the runtime strings in ``texts`` (environment values, outputs, named by
``labels``), whose context holds no secret; one of ``"kind": "check"``
checks rendered files against their schemas (:mod:`.schemacheck`),
``{"content": null}`` for each file that passes.

Each request is rendered in an environment of its own (only compiled code is
kept between requests; runtime strings share one environment without a
loader, where nothing outlives a render); an image render gets the secret
parameters as placeholders that fail when used (its request does not hold
their values).
"""

from __future__ import annotations

import json
import math
import os
import resource
import signal
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any

from smartshare.rendering.limits import RenderLimits


def serve(request: Mapping[str, Any], code_cache: Any) -> Iterator[dict[str, Any]]:
    """Render one request's templates, in order; stop at the first error."""
    from smartshare.errors import SmartshareError, TemplateRenderError
    from smartshare.rendering.environment import with_secret_parameters
    from smartshare.rendering.sandbox import new_environment, render, render_text

    limits = RenderLimits(**request["limits"])
    if request.get("kind") == "check":
        yield from _check(request, limits)
        return
    if request.get("kind") == "runtime-strings":
        yield from _runtime_strings(request, limits)
        return
    names: list[str] = list(request["templates"])
    texts: list[str] | None = request.get("texts") if request.get("kind") == "strings" else None
    try:
        env = new_environment(
            Path(request["templates_dir"]),
            code_cache=code_cache,
            max_value_bytes=limits.output_bytes,
        )
    except SmartshareError as exc:  # the templates folder itself is refused
        yield {"error": f"template {names[0]}: {exc.message}", "hint": exc.hint}
        return
    runtime = bool(request["runtime"])
    context = dict(request["context"])
    if not runtime:
        context["params"] = with_secret_parameters(
            context.get("params", {}), frozenset(request["secret_names"])
        )
    for index, src in enumerate(names):
        # The parent stops a render at `seconds` of wall-clock time; this is
        # the kernel's backstop, should the parent be unable to.
        _limit_cpu(limits.seconds + 1)
        try:
            if texts is not None:
                text = render_text(
                    env, texts[index], context, what=src, max_bytes=limits.output_bytes
                )
            else:
                text = render(env, src, context, runtime=runtime, max_bytes=limits.output_bytes)
        except TemplateRenderError as exc:
            yield {"error": exc.message, "hint": exc.hint}
            return
        except MemoryError:
            what = src if texts is not None else f"template {src}"
            yield {"error": memory_message(what, limits), "hint": MEMORY_HINT, "retire": True}
            return
        yield {"content": text}


def _runtime_strings(request: Mapping[str, Any], limits: RenderLimits) -> Iterator[dict[str, Any]]:
    """Render each runtime string of a manifest, in order; stop at the first that fails."""
    from smartshare.errors import TemplateRenderError
    from smartshare.rendering.sandbox import render_string

    context = request["context"]
    for what, text in zip(request["labels"], request["texts"], strict=True):
        _limit_cpu(limits.seconds + 1)
        try:
            rendered = render_string(text, context, what=what, max_bytes=limits.output_bytes)
        except TemplateRenderError as exc:
            yield {"error": exc.message, "hint": exc.hint}
            return
        except MemoryError:
            yield {"error": memory_message(what, limits), "hint": MEMORY_HINT, "retire": True}
            return
        yield {"content": rendered}


def _check(request: Mapping[str, Any], limits: RenderLimits) -> Iterator[dict[str, Any]]:
    """Check each rendered file against its schema, in order; stop at the first that fails."""
    from smartshare.rendering.schemacheck import OutputCheck, check_output

    for item in request["checks"]:
        check = OutputCheck(**item)
        _limit_cpu(limits.seconds + 1)
        try:
            problem = check_output(check)
        except MemoryError:
            yield {
                "error": memory_message(f"schema check of {check.dest}", limits),
                "hint": MEMORY_HINT,
                "retire": True,
            }
            return
        if problem is not None:
            yield {"error": problem, "hint": CHECK_HINT}
            return
        yield {"content": None}


CHECK_HINT = (
    "the app's own schema says what its configuration may hold: check the values the "
    "region gives (profile, --set) and the template"
)


def memory_message(what: str, limits: RenderLimits) -> str:
    return f"{what}: used more than {limits.memory_mib} of memory (the limit per render)"


MEMORY_HINT = "raise render_limits.memory_mib in the settings file if the template needs it"


def _limit_cpu(seconds: float) -> None:
    """Let the coming template use ``seconds`` of CPU time, counted from now."""
    used = resource.getrusage(resource.RUSAGE_SELF)
    spent = used.ru_utime + used.ru_stime
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    soft = math.ceil(spent + seconds)
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))


def _write(out: IO[bytes], message: Mapping[str, Any]) -> None:
    # ASCII JSON: any text (a lone surrogate in a message too) goes through.
    out.write(json.dumps(message).encode("ascii") + b"\n")
    out.flush()


def main(argv: list[str]) -> int:
    # Ctrl-C in the terminal is the parent's business; it stops the worker.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Imported before the limit: what the worker needs is in memory already.
    import smartshare.rendering.sandbox  # noqa: F401
    from smartshare.rendering.environment import CodeCache

    memory = int(argv[0])
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        memory = min(memory, hard)  # a lower limit set from outside stands
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    code_cache = CodeCache()
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    # The parent shows what a worker that failed to start printed; from here
    # on nothing is printed (no one reads it, and it might show a value).
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    _write(stdout, {"ready": True})
    while line := stdin.readline():
        for answer in serve(json.loads(line), code_cache):
            _write(stdout, answer)
            if answer.get("retire"):
                return 0
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
