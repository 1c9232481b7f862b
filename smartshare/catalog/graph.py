"""The ``requires`` graph of a catalogue: dependency order, cycles, what to start first.

``adopt`` and ``plan`` take their order from here, ``validate`` its cycle
check.  Nothing here recurses: a chain of requires as long as the catalogue
is walked with loops (:mod:`graphlib` for the order, an iterative Tarjan for
the cycles), never with Python's call stack.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Collection, Iterable, Sequence
from graphlib import CycleError, TopologicalSorter
from typing import TYPE_CHECKING

from smartshare.errors import InvalidInputError

if TYPE_CHECKING:
    from smartshare.catalog.diagnostics import Problem
    from smartshare.catalog.load import Catalog


def requires_graph(catalog: Catalog) -> dict[str, list[str]]:
    """Each app and the apps of the catalogue it requires (unknown names left out)."""
    return {
        name: [dep for dep in loaded.model.requires if dep in catalog.apps]
        for name, loaded in catalog.apps.items()
    }


def dependency_order(
    catalog: Catalog, names: Sequence[str], *, external: Collection[str] = ()
) -> list[str]:
    """``names`` plus everything they require, dependencies first.

    Apps that can go at the same point are in alphabetical order.  An app in
    ``external`` (the region runs it already) is left out, and so is what it
    alone requires.  Raises UnknownAppError for a name (or a requirement) the
    catalogue lacks, and InvalidInputError, locating each ``requires`` entry on
    the cycle, for a dependency cycle.
    """
    for name in names:
        catalog.app(name)  # unknown app: a clear error before anything else
    selected: dict[str, list[str]] = {}
    pending = sorted(dict.fromkeys(n for n in names if n not in external), reverse=True)
    while pending:
        name = pending.pop()
        if name not in selected:
            selected[name] = [d for d in catalog.app(name).requires if d not in external]
            pending.extend(reversed(selected[name]))
    sorter = TopologicalSorter(selected)
    try:
        sorter.prepare()
    except CycleError as exc:
        # graphlib lists each node before the one that requires it.
        cycle = list(reversed(exc.args[1][1:]))
        start = cycle.index(min(cycle))
        cycle = cycle[start:] + cycle[:start]
        raise InvalidInputError(
            f"dependency cycle: {' -> '.join([*cycle, cycle[0]])}",
            hint="an app cannot require, directly or not, an app that requires it",
            problems=cycle_problems(catalog, selected),
        ) from None
    order: list[str] = []
    while sorter.is_active():
        ready = sorted(sorter.get_ready())
        order.extend(ready)
        sorter.done(*ready)
    return order


def critical_path_first(catalog: Catalog, order: Sequence[str]) -> list[str]:
    """``order`` with the apps that others wait for first (longest chain of dependents).

    Starting an app early that has dependents shortens the run when there are
    fewer workers than apps; dependencies still always finish first.
    """
    selected = set(order)
    dependents: dict[str, list[str]] = {name: [] for name in order}
    for name in order:
        for dependency in catalog.app(name).requires:
            if dependency in selected:
                dependents[dependency].append(name)
    depth: dict[str, int] = {}
    for name in reversed(order):  # dependents come later in ``order``
        depth[name] = 1 + max((depth[d] for d in dependents[name]), default=0)
    position = {name: index for index, name in enumerate(order)}
    return sorted(order, key=lambda name: (-depth[name], position[name]))


def cycles(catalog: Catalog) -> dict[tuple[str, int], list[str]]:
    """Every ``requires`` edge (app, index) that lies on a cycle, with one such cycle.

    Within a strongly connected component every edge is on a cycle: for the
    edge ``a -> b`` the cycle is ``a``, then the shortest path from ``b`` back
    to ``a``.
    """
    graph = requires_graph(catalog)
    result: dict[tuple[str, int], list[str]] = {}
    for component in _strongly_connected(graph):
        if len(component) < 2:
            continue
        for name in sorted(component):
            for index, dep in enumerate(catalog.apps[name].model.requires):
                if dep in component:
                    path = _shortest_path(graph, dep, name, component)
                    result[(name, index)] = [name, *path]
    return result


def cycle_problem(catalog: Catalog, name: str, index: int, cycle: list[str]) -> Problem:
    """The problem for ``requires[index]`` of ``name``, located in its manifest."""
    return catalog.apps[name].doc.problem(
        ("requires", index), f"dependency cycle: {' -> '.join(cycle)}"
    )


def cycle_problems(catalog: Catalog, names: Iterable[str]) -> list[Problem]:
    """The located cycle problems of the apps ``names``."""
    wanted = set(names)
    return [
        cycle_problem(catalog, name, index, cycle)
        for (name, index), cycle in sorted(cycles(catalog).items())
        if name in wanted
    ]


def _strongly_connected(graph: dict[str, list[str]]) -> list[set[str]]:
    """Tarjan's algorithm, iterative: a long chain of requires must not hit the recursion limit."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []
    counter = 0
    for start in graph:
        if start in index:
            continue
        work: list[tuple[str, int]] = [(start, 0)]
        while work:
            node, edge = work.pop()
            if edge == 0:
                index[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack.add(node)
            edges = graph[node]
            if edge < len(edges):
                work.append((node, edge + 1))
                nxt = edges[edge]
                if nxt not in index:
                    work.append((nxt, 0))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            if low[node] == index[node]:
                component: set[str] = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                components.append(component)
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return components


def _shortest_path(
    graph: dict[str, list[str]], start: str, goal: str, within: set[str]
) -> list[str]:
    previous: dict[str, str | None] = {start: None}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        if node == goal:
            break
        for nxt in graph[node]:
            if nxt in within and nxt not in previous:
                previous[nxt] = node
                queue.append(nxt)
    path: list[str] = []
    step: str | None = goal
    while step is not None:
        path.append(step)
        step = previous.get(step)
    return path[::-1]
