"""Branch globs match whole names; '*' stays in one segment, '**' crosses segments."""

import pytest

from promoter.core.branches import GlobError, compile_glob, is_tag_ref, matches, normalize


@pytest.mark.parametrize(
    "pattern,branch,expected",
    [
        ("release/*", "release/1.2", True),
        ("release/*", "release-notes", False),
        ("release/*", "releases/x", False),
        ("release/*", "release/1.2/hotfix", False),
        ("release/*", "release/", True),
        ("release", "release", True),
        ("release", "release/1.0", False),
        ("release", "prerelease", False),
        ("feature/**", "feature/a/b/c", True),
        ("feature/**", "feature/x", True),
        ("feature/**", "features/x", False),
        ("**", "anything/at/all", True),
        ("**/hotfix", "hotfix", True),
        ("**/hotfix", "team/a/hotfix", True),
        ("hotfix-[0-9]*", "hotfix-3a", True),
        ("hotfix-[0-9]*", "hotfix-a3", False),
        ("hotfix-[!0-9]", "hotfix-a", True),
        ("v?", "v1", True),
        ("v?", "v/", False),
        ("feature/$(x)", "feature/$(x)", True),
        ("a.b", "aXb", False),
    ],
)
def test_glob_matches_whole_names(pattern, branch, expected):
    assert matches(pattern, branch) is expected


@pytest.mark.parametrize("pattern", ["", "a b", "release/***", "hotfix-[0-9", "refs/heads/main", "x]"])
def test_bad_globs_are_rejected(pattern):
    with pytest.raises(GlobError):
        compile_glob(pattern)


@pytest.mark.parametrize(
    "ref,short",
    [
        ("refs/heads/main", "main"),
        ("refs/heads/release/1.2", "release/1.2"),
        ("main", "main"),
        (None, None),
    ],
)
def test_normalize_strips_refs_heads(ref, short):
    assert normalize(ref) == short


def test_tag_refs_are_not_branches():
    assert is_tag_ref("refs/tags/v1")
    assert not is_tag_ref("refs/heads/tags/v1")
