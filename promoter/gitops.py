"""Git adapter (GitPython): the only module that talks to git.

Branch names are passed to git as single arguments, never through a shell, so a
branch called ``feature/$(touch pwned)`` is just a name.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from promoter.errors import GitError


@dataclass(frozen=True)
class HeadInfo:
    branch: str | None   # None when HEAD is detached
    sha: str | None      # None in a repo without commits
    tree: str | None
    author: str | None
    default_branch: str | None  # from the remote's HEAD (origin/HEAD), when known


def _repo(path: str | os.PathLike[str], *, quiet: bool = False):
    import git

    try:
        return git.Repo(path, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        if quiet:
            return None
        raise GitError(f"{Path(path).resolve()}: not a git repository (run inside a checkout, or state "
                       f"the event with --event/--branch)") from None


def head_info(path: str | os.PathLike[str] = ".", *, allow_missing: bool = False) -> HeadInfo:
    """Branch, sha and tree of HEAD. With ``allow_missing``, outside a repo gives empty info."""
    repo = _repo(path, quiet=allow_missing)
    if repo is None:
        return HeadInfo(None, None, None, None, None)
    try:
        branch = None if repo.head.is_detached else repo.active_branch.name
    except TypeError:
        branch = None
    sha = tree = author = None
    if repo.head.is_valid():
        commit = repo.head.commit
        sha, tree = commit.hexsha, commit.tree.hexsha
        author = commit.author.name
    return HeadInfo(branch, sha, tree, author, remote_default_branch(repo))


def remote_default_branch(repo, remote: str = "origin") -> str | None:
    """The branch ``refs/remotes/<remote>/HEAD`` points at, if the clone recorded it."""
    try:
        ref = repo.git.symbolic_ref(f"refs/remotes/{remote}/HEAD", "--quiet")
    except Exception:  # no remote, or HEAD not recorded
        return None
    prefix = f"refs/remotes/{remote}/"
    return ref[len(prefix):] if ref.startswith(prefix) else None


def resolve(path: str | os.PathLike[str], rev: str) -> str | None:
    """The commit sha ``rev`` (a branch, tag or sha) names, or ``None``."""
    repo = _repo(path, quiet=True)
    if repo is None:
        return None
    for candidate in (rev, f"refs/heads/{rev}", f"refs/remotes/origin/{rev}"):
        try:
            return repo.commit(candidate).hexsha
        except Exception:
            continue
    return None


def tree_of(path: str | os.PathLike[str], rev: str | None, *, quiet: bool = True) -> str | None:
    """The tree sha of commit ``rev``; ``None`` when unknown here (e.g. a CI sha not fetched)."""
    if not rev:
        return None
    repo = _repo(path, quiet=quiet)
    if repo is None:
        return None
    try:
        return repo.commit(rev).tree.hexsha
    except Exception:
        return None


def read_tree_files(path: str | os.PathLike[str], rev: str, folder: str) -> dict[str, str] | None:
    """Every file under ``folder`` in commit ``rev`` as {path relative to folder: text}.

    Returns ``None`` when ``rev`` cannot be resolved here.
    """
    repo = _repo(path, quiet=True)
    if repo is None:
        return None
    sha = resolve(path, rev)
    if sha is None:
        return None
    tree = repo.commit(sha).tree
    try:
        sub = tree / folder.strip("/")
    except KeyError:
        return {}
    out: dict[str, str] = {}
    for blob in sub.traverse():
        if blob.type != "blob":
            continue
        rel = blob.path[len(folder.strip("/")) + 1:]
        try:
            out[rel] = blob.data_stream.read().decode("utf-8")
        except UnicodeDecodeError:
            continue
    return out
