"""The requires graph: dependency order and cycles, also along a chain deeper than the stack."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from smartshare.catalog.checks import validate
from smartshare.catalog.graph import critical_path_first, dependency_order
from smartshare.catalog.load import Catalog, load_catalog
from smartshare.errors import InvalidInputError, UnknownAppError

CHAIN = 1500

MANIFEST = """\
apiVersion: smartshare/v1
kind: App
name: {name}
title: {name}
summary: {{en: Link {name} of a long chain.}}
owner: {{name: Kota Contoh, region_code: "36.71", contact: it@contoh.go.id}}
category: test
license: MIT
version: "1.0.0"
maturity: stable
source: {{repo: https://forge.example/{name}.git, ref: v1.0.0}}
images: [{{name: {name}}}]
requires: [{requires}]
"""


def write_catalog(root: Path, apps: dict[str, list[str]]) -> Path:
    (root / "templates").mkdir(parents=True)
    folder = root / "manifests" / "apps"
    folder.mkdir(parents=True)
    for name, requires in apps.items():
        text = MANIFEST.format(name=name, requires=", ".join(requires))
        (folder / f"{name}.yaml").write_text(text, encoding="utf-8")
    return root


def link(index: int) -> str:
    return f"link-{index:04d}"


def chain(*, closing_at: int | None = None) -> dict[str, list[str]]:
    """link-0000 requires link-0001 ... up to the last; it requires ``closing_at``, if given."""
    apps = {link(i): [link(i + 1)] for i in range(CHAIN - 1)}
    apps[link(CHAIN - 1)] = [] if closing_at is None else [link(closing_at)]
    return apps


@pytest.fixture(scope="module")
def long_chain(tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    return load_catalog(write_catalog(tmp_path_factory.mktemp("chain"), chain()))


@pytest.fixture(scope="module")
def long_chain_with_cycle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # The cycle is the chain's last three links: finding it walks all 1500.
    return write_catalog(tmp_path_factory.mktemp("cycle"), chain(closing_at=CHAIN - 3))


def test_a_chain_longer_than_the_recursion_limit_is_ordered(long_chain: Catalog) -> None:
    assert sys.getrecursionlimit() < CHAIN
    order = dependency_order(long_chain, [link(0)])
    assert order == [link(i) for i in reversed(range(CHAIN))]
    assert critical_path_first(long_chain, order) == order


def test_a_cycle_at_the_end_of_a_long_chain_is_found_by_adopt(
    long_chain_with_cycle: Path,
) -> None:
    catalog = load_catalog(long_chain_with_cycle)
    with pytest.raises(InvalidInputError) as caught:
        dependency_order(catalog, [link(0)])
    last = [link(CHAIN - 3), link(CHAIN - 2), link(CHAIN - 1)]
    assert caught.value.message == f"dependency cycle: {' -> '.join([*last, last[0]])}"
    # Located in the manifests, as validate locates it.
    assert sorted((Path(p.file).stem, p.field) for p in caught.value.problems) == [
        (name, "requires.0") for name in last
    ]


def test_a_cycle_at_the_end_of_a_long_chain_is_found_by_validate(
    long_chain_with_cycle: Path,
) -> None:
    report = validate(catalog_root=long_chain_with_cycle)
    assert report.files_checked == CHAIN
    cycles = [p for p in report.problems if "dependency cycle" in p.message]
    assert {Path(p.file).stem for p in cycles} == {
        link(CHAIN - 3),
        link(CHAIN - 2),
        link(CHAIN - 1),
    }
    assert len(cycles) == len(report.problems) == 3
    assert all(p.line == 13 and p.field == "requires.0" for p in cycles)


def test_apps_that_may_go_together_are_in_alphabetical_order(tmp_path: Path) -> None:
    apps = {"zeta": [], "alpha": ["zeta"], "mid": [], "beta": ["mid", "zeta"], "top": ["beta"]}
    catalog = load_catalog(write_catalog(tmp_path, apps))
    assert dependency_order(catalog, ["top", "alpha"]) == ["mid", "zeta", "alpha", "beta", "top"]
    assert dependency_order(catalog, ["mid"]) == ["mid"]


def test_an_unknown_requirement_is_a_clear_error(tmp_path: Path) -> None:
    catalog = load_catalog(write_catalog(tmp_path, {"alpha": ["ghost"]}))
    with pytest.raises(UnknownAppError, match="no app named 'ghost'"):
        dependency_order(catalog, ["alpha"])
