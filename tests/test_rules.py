"""One rule per kind of value: the manifest check and the code acting on the value agree."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from smartshare.catalog.models import Source, TemplateSpec
from smartshare.catalog.rules import ref_problem, relative_path_problem
from smartshare.errors import GitError, UnsafePathError
from smartshare.fetching.mirror import resolve_ref
from smartshare.rendering.sandbox import TemplateSource
from smartshare.state.safefs import confined_path

BAD_REFS = [
    "-v1",
    "+v1",  # the manifest check let this through before there was one rule
    "x/.y",
    "@",
    "a//b",
    "/v1",
    "v1/",
    "v1.",
    "v1.lock",
    "a..b",
    "v1@{0}",
    "v1:refs/heads/x",
    "v1 ",
    "v1\u00a0",  # whitespace outside ASCII: git would take it, the manifest check did not
    "v1\x7f",
]
GOOD_REFS = ["v1.2.0", "main", "refs/tags/v1", "release/2024-01", "feature/kota_tangerang"]


@pytest.mark.parametrize("ref", BAD_REFS)
def test_a_ref_refused_by_the_manifest_is_refused_by_fetching(ref: str, tmp_path: Path) -> None:
    assert ref_problem(ref) is not None
    with pytest.raises(ValidationError, match="not a valid git tag or branch name"):
        Source(repo="https://forge.example/app.git", ref=ref)
    with pytest.raises(GitError, match="refusing ref"):
        resolve_ref(url=str(tmp_path / "none"), ref=ref, commit=None, cache_dir=tmp_path / "c")


@pytest.mark.parametrize("ref", GOOD_REFS)
def test_plain_tags_and_branches_pass(ref: str) -> None:
    assert ref_problem(ref) is None
    assert Source(repo="https://forge.example/app.git", ref=ref).ref == ref


BAD_PATHS = ["../x", "a/../../x", "/etc/passwd", "~/x", "a\\b", "a\x00b", "", " ", ".git/config"]


@pytest.mark.parametrize("path", BAD_PATHS)
def test_one_relative_path_rule_for_manifests_templates_and_writes(
    path: str, tmp_path: Path
) -> None:
    assert relative_path_problem(path) is not None
    with pytest.raises(ValidationError):
        TemplateSpec(src="page.j2", dest=path)
    with pytest.raises(UnsafePathError):
        TemplateSource(tmp_path).joined(path)
    with pytest.raises(UnsafePathError):
        confined_path(tmp_path, path)


def test_the_folder_is_named_in_the_message(tmp_path: Path) -> None:
    with pytest.raises(UnsafePathError, match=r"must stay inside templates/ \('\.\.'"):
        TemplateSource(tmp_path).joined("../x.j2")
    assert relative_path_problem("../x") == "must stay inside its folder ('..' is not allowed)"
