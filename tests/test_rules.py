"""One rule per kind of value: the manifest check and the code acting on the value agree."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from smartshare.building.context import check_context
from smartshare.catalog.checks import validate
from smartshare.catalog.models import Image, Source, TemplateSpec
from smartshare.catalog.rules import ref_problem, relative_path_problem
from smartshare.errors import GitError, UnsafePathError
from smartshare.fetching.mirror import resolve_ref
from smartshare.rendering.sandbox import TemplateSource
from smartshare.state.safefs import confined_path

from catalogs import make_catalog

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
# Every name git itself treats as .git (is_ntfs_dotgit, is_hfs_dotgit), anywhere in a path.
GIT_DIR_PATHS = [
    "www/.git/config",  # below the top level: git finds it from inside www/
    ".git",
    "a/b/.git/hooks/post-checkout",
    ".GIT/config",
    "www/.Git/config",
    "www/.git./config",  # NTFS drops trailing dots and spaces
    "www/.git /config",
    "www/.git. . ./config",
    "www/.git::$INDEX_ALLOCATION/config",  # an NTFS stream name
    "www/git~1/config",  # the NTFS short name of .git
    "www/GIT~1./config",
    "www/.g\u200cit/config",  # HFS+ ignores zero-width and direction code points
    "www/.\u200dgit/config",
    "www/.gi\u202et/config",
    "www/.git\ufeff/config",
    "www/\u206a.git/config",
]
NOT_GIT_DIR_PATHS = [
    "www/.gitignore",
    ".github/workflows/ci.yml",
    "a/git/config",
    "www/.gitx/y",
    "www/git~2/x",
    "www/.git-keep",
    "www/x.git/config",
]


@pytest.mark.parametrize("path", BAD_PATHS)
def test_one_relative_path_rule_for_manifests_templates_and_writes(
    path: str, tmp_path: Path
) -> None:
    rule = relative_path_problem(path)
    assert rule is not None
    with pytest.raises(ValidationError, match="dest") as model:
        TemplateSpec(src="page.j2", dest=path)
    # (An empty string is refused by the field's own minimum length first.)
    assert (rule if path else "at least 1 character") in str(model.value)
    # The same rule's words, with the folder named.
    with pytest.raises(UnsafePathError) as template:
        TemplateSource(tmp_path).joined(path)
    assert rule.replace("its folder", "templates/") in template.value.message
    with pytest.raises(UnsafePathError) as written:
        confined_path(tmp_path, path)
    assert rule.replace("its folder", str(tmp_path)) in written.value.message


@pytest.mark.parametrize("path", GIT_DIR_PATHS)
def test_no_component_may_be_a_name_git_reads_as_dot_git(path: str, tmp_path: Path) -> None:
    assert relative_path_problem(path) is not None
    with pytest.raises(ValidationError, match="git"):
        TemplateSpec(src="page.j2", dest=path)
    with pytest.raises(ValidationError, match="git"):
        Image(name="web", context=path)
    with pytest.raises(ValidationError, match="git"):
        Image(name="web", dockerfile=f"{path}/Dockerfile")
    with pytest.raises(UnsafePathError, match="git"):
        TemplateSource(tmp_path).joined(path)
    with pytest.raises(UnsafePathError, match="git"):
        confined_path(tmp_path, path)


@pytest.mark.parametrize("path", NOT_GIT_DIR_PATHS)
def test_names_like_dot_git_that_git_does_not_take_for_it(path: str) -> None:
    assert relative_path_problem(path) is None
    assert TemplateSpec(src="page.j2", dest=path).dest == path


def test_a_dockerfile_below_a_dot_git_folder_is_not_built(tmp_path: Path) -> None:
    hidden = tmp_path / ".Git. "
    hidden.mkdir()
    (hidden / "Dockerfile").write_text("FROM scratch\n")
    with pytest.raises(UnsafePathError, match="git"):
        check_context(tmp_path, ".", ".Git. /Dockerfile")


def test_validate_locates_a_dest_in_dot_git(tmp_path: Path) -> None:
    catalog = make_catalog(tmp_path, {"alpha": ()})
    manifest = catalog.root / "manifests/apps/alpha.yaml"
    manifest.write_text(
        manifest.read_text().replace("dest: www/index.html", "dest: www/.git/config")
    )
    (problem,) = [
        p for p in validate(catalog_root=catalog.root).problems if p.file == str(manifest)
    ]
    assert problem.field == "templates.0.dest"
    assert problem.line == manifest.read_text().splitlines().index("    dest: www/.git/config") + 1
    assert ".git" in problem.message


def test_the_folder_is_named_in_the_message(tmp_path: Path) -> None:
    with pytest.raises(UnsafePathError, match=r"must stay inside templates/ \('\.\.'"):
        TemplateSource(tmp_path).joined("../x.j2")
    assert relative_path_problem("../x") == "must stay inside its folder ('..' is not allowed)"
