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
    branch: str | None  # None when HEAD is detached
    sha: str | None  # None in a repo without commits
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
        raise GitError(
            f"{Path(path).resolve()}: not a git repository (run inside a checkout, or state "
            f"the event with --event/--branch)"
        ) from None


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
    return ref[len(prefix) :] if ref.startswith(prefix) else None


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
        rel = blob.path[len(folder.strip("/")) + 1 :]
        try:
            out[rel] = blob.data_stream.read().decode("utf-8")
        except UnicodeDecodeError:
            continue
    return out


# --------------------------------------------------------------------------- what changed (CI project selection)

_NO_COMMIT = "0" * 40  # what GitHub and GitLab send as the "before" of a branch's first push


def changed_files(
    path: str | os.PathLike[str], base: str, head: str, *, since_merge_base: bool = False
) -> list[str] | None:
    """The paths (relative to the top of the work tree) that differ between ``base`` and ``head``.

    Args:
        path: inside the repository.
        base: a commit, branch or remote branch (``origin/main``).
        head: a commit or branch.
        since_merge_base: diff from the merge base of the two (``git diff base...head``, what a
            pull request shows) instead of from ``base`` itself (``base..head``, what a push added).

    Returns:
        Sorted paths (a rename counts as both names), or ``None`` when either commit is not
        known here (a shallow clone, the all-zero "before" of a new branch).
    """
    import git

    if not base or not head or base.strip("0") == "":
        return None
    repo = _repo(path, quiet=True)
    if repo is None:
        return None
    a, b = resolve(path, base), resolve(path, head)
    if a is None or b is None:
        return None
    try:
        if since_merge_base:
            bases = repo.git.merge_base(a, b).split()
            if not bases:
                return None
            a = bases[0]
        out = repo.git.diff("--name-only", "--no-renames", "-z", a, b, "--")
    except git.GitCommandError:
        return None
    return sorted({p for p in out.split("\0") if p})


def first_parent(path: str | os.PathLike[str], rev: str) -> str | None:
    """The first parent of commit ``rev`` (what a merge was made onto), or ``None``."""
    repo = _repo(path, quiet=True)
    sha = resolve(path, rev) if repo is not None else None
    if sha is None:
        return None
    parents = repo.commit(sha).parents
    return parents[0].hexsha if parents else None


# --------------------------------------------------------------------------- release cutting
# Every name below reaches git as one argument of its own (GitPython builds argv, no shell),
# and is checked with `git check-ref-format` first, so it can never be read as an option.


def repo_root(path: str | os.PathLike[str] = ".") -> Path:
    """The top folder of the work tree that contains ``path``.

    Raises:
        GitError: when ``path`` is not inside a git repository.
    """
    return Path(_repo(path).working_tree_dir)


def valid_branch_name(path: str | os.PathLike[str], name: str) -> bool:
    """True when git accepts ``name`` as a branch name (``git check-ref-format --branch``)."""
    import git

    if not name or name.startswith("-") or name.strip() != name:
        return False
    try:
        _repo(path).git.check_ref_format("--branch", name)
    except git.GitCommandError:
        return False
    return True


def valid_tag_name(path: str | os.PathLike[str], name: str) -> bool:
    """True when git accepts ``name`` as a tag name."""
    import git

    if not name or name.startswith("-"):
        return False
    try:
        _repo(path).git.check_ref_format(f"refs/tags/{name}")
    except git.GitCommandError:
        return False
    return True


def is_dirty(path: str | os.PathLike[str] = ".") -> bool:
    """True when the work tree or index has changes, or there are untracked (not ignored) files."""
    return _repo(path).is_dirty(index=True, working_tree=True, untracked_files=True)


def local_branch_exists(path: str | os.PathLike[str], name: str) -> bool:
    """True when ``refs/heads/<name>`` exists in the local repository."""
    return f"refs/heads/{name}" in {h.path for h in _repo(path).heads}


def local_tag_exists(path: str | os.PathLike[str], name: str) -> bool:
    """True when ``refs/tags/<name>`` exists in the local repository."""
    return f"refs/tags/{name}" in {t.path for t in _repo(path).tags}


def has_remote(path: str | os.PathLike[str], remote: str) -> bool:
    """True when a remote called ``remote`` is configured."""
    return remote in {r.name for r in _repo(path).remotes}


def remote_refs(path: str | os.PathLike[str], remote: str, *refs: str) -> dict[str, str]:
    """``{full ref: sha}`` for each of ``refs`` (e.g. ``refs/heads/release/1.2``) that the remote has.

    Asks the remote itself (``git ls-remote``), not the possibly stale remote-tracking refs.

    Raises:
        GitError: when the remote cannot be reached.
    """
    import git

    try:
        out = _repo(path).git.ls_remote(remote, *refs)
    except git.GitCommandError as exc:
        raise GitError(f"cannot reach remote {remote!r}: {_first_line(exc)}") from None
    found: dict[str, str] = {}
    for line in out.splitlines():
        sha, _, ref = line.partition("\t")
        if ref in refs:
            found[ref] = sha
    return found


def fetch(path: str | os.PathLike[str], remote: str, branch: str) -> None:
    """Update ``refs/remotes/<remote>/<branch>`` from the remote (no merge, no checkout).

    Raises:
        GitError: when the remote cannot be reached or has no such branch.
    """
    import git

    try:
        _repo(path).git.fetch("--quiet", "--no-tags", remote, f"+refs/heads/{branch}:refs/remotes/{remote}/{branch}")
    except git.GitCommandError as exc:
        raise GitError(f"cannot fetch {branch!r} from {remote!r}: {_first_line(exc)}") from None


def ahead_behind(path: str | os.PathLike[str], branch: str, remote: str = "origin") -> tuple[int, int] | None:
    """Commits ``branch`` has that ``<remote>/<branch>`` lacks, and the reverse.

    Returns:
        ``(ahead, behind)``, or ``None`` when there is no remote-tracking ref to compare with.
    """
    import git

    repo = _repo(path)
    try:
        out = repo.git.rev_list("--left-right", "--count", f"refs/heads/{branch}...refs/remotes/{remote}/{branch}")
    except git.GitCommandError:
        return None
    ahead, behind = (int(x) for x in out.split())
    return ahead, behind


def create_branch_and_tag(path: str | os.PathLike[str], branch: str, sha: str, tag: str, message: str) -> None:
    """Create branch ``branch`` and annotated tag ``tag`` at commit ``sha`` (no checkout).

    Raises:
        GitError: when either exists already or git refuses; nothing is left half-made.
    """
    import git

    repo = _repo(path)
    try:
        repo.git.branch("--no-track", branch, sha)
    except git.GitCommandError as exc:
        raise GitError(f"cannot create branch {branch!r}: {_first_line(exc)}") from None
    try:
        repo.git.tag("--annotate", "--message", message, tag, sha)
    except git.GitCommandError as exc:
        repo.git.branch("--delete", "--force", branch)
        raise GitError(f"cannot create tag {tag!r}: {_first_line(exc)}") from None


def delete_branch_and_tag(path: str | os.PathLike[str], branch: str, tag: str) -> None:
    """Remove a local branch and tag (undo of :func:`create_branch_and_tag`); missing ones are fine."""
    import git

    repo = _repo(path)
    for args in (("branch", "--delete", "--force", branch), ("tag", "--delete", tag)):
        try:
            repo.git.execute(["git", *args])
        except git.GitCommandError:
            pass


def push(path: str | os.PathLike[str], remote: str, *refs: str) -> None:
    """Push each full ref (``refs/heads/x``, ``refs/tags/v1``) to the same name on ``remote``, atomically.

    Raises:
        GitError: when the push is rejected or the remote cannot be reached.
    """
    import git

    try:
        _repo(path).git.push("--atomic", "--porcelain", remote, *(f"{r}:{r}" for r in refs))
    except git.GitCommandError as exc:
        raise GitError(f"push to {remote!r} failed: {_first_line(exc)}") from None


def tag_message(path: str | os.PathLike[str], tag: str) -> str:
    """The message of annotated tag ``tag``."""
    t = _repo(path).tags[tag].tag
    return t.message if t is not None else ""


def messages_at(path: str | os.PathLike[str], sha: str) -> list[str]:
    """The messages of the annotated tags pointing at commit ``sha``, then the commit's own message.

    Empty when ``sha`` is not in this repository (a shallow CI checkout, an unknown commit).
    """
    import git

    try:
        repo = _repo(path, quiet=True)
        commit = repo.commit(sha)
    except (ValueError, git.BadName, git.GitCommandError, GitError):
        return []
    out = [t.tag.message for t in repo.tags if t.tag is not None and t.commit.hexsha == commit.hexsha]
    out.append(str(commit.message))
    return out


def _first_line(exc: Exception) -> str:
    text = (getattr(exc, "stderr", "") or str(exc)).strip()
    for line in text.splitlines():
        line = line.strip().removeprefix("stderr:").strip().strip("'").strip()
        if line:
            return line
    return type(exc).__name__


# --------------------------------------------------------------------------- scratch repositories (demo)


def init_repo(
    path: str | os.PathLike[str], branch: str = "main", *, author: str = "promote demo", email: str = "demo@example.org"
):
    """Create a git repository at ``path`` with ``branch`` and a local identity."""
    import git

    repo = git.Repo.init(path, initial_branch=branch)
    with repo.config_writer() as cw:
        cw.set_value("user", "name", author)
        cw.set_value("user", "email", email)
    return repo


def commit_all(path: str | os.PathLike[str], message: str) -> str:
    """Stage everything and commit; returns the new commit sha."""
    repo = _repo(path)
    repo.git.add("-A")
    repo.index.commit(message)
    return repo.head.commit.hexsha


def checkout(path: str | os.PathLike[str], branch: str, *, create: bool = False) -> None:
    """Switch to ``branch`` (creating it from HEAD when asked)."""
    repo = _repo(path)
    if create:
        repo.git.checkout("-b", branch)
    else:
        repo.git.checkout(branch)


def merge_ff(path: str | os.PathLike[str], branch: str) -> str:
    """Fast-forward the current branch to ``branch`` (a merged PR); returns the new head sha."""
    repo = _repo(path)
    repo.git.merge("--ff-only", branch)
    return repo.head.commit.hexsha


# --------------------------------------------------------------------------- audit anchors (git notes)
# The audit chain's head at each prod decision, kept in git: one JSON line per anchor in a note
# on the release commit, under a notes ref of its own. Notes are not branches or tags, so
# pushing them triggers no CI pipeline and clutters no tag list; the notes ref's own history is
# a commit chain (each append is a commit), and two runners' notes merge line by line
# (``cat_sort_uniq``), so concurrent releases of different models do not conflict.

AUDIT_NOTES_REF = "refs/notes/promote-audit"
_INCOMING = "refs/notes/promote-audit-incoming"
_IDENTITY = ("promote", "promote@localhost")


def _identity_env(repo) -> dict[str, str]:
    """Author and committer for a notes commit: the repo's own identity, else ``promote``."""
    reader = repo.config_reader()
    name = reader.get_value("user", "name", "") or os.environ.get("GIT_COMMITTER_NAME") or _IDENTITY[0]
    email = reader.get_value("user", "email", "") or os.environ.get("GIT_COMMITTER_EMAIL") or _IDENTITY[1]
    return {
        "GIT_AUTHOR_NAME": str(name),
        "GIT_AUTHOR_EMAIL": str(email),
        "GIT_COMMITTER_NAME": str(name),
        "GIT_COMMITTER_EMAIL": str(email),
    }


def add_note_line(
    path: str | os.PathLike[str], line: str, rev: str | None = None, ref: str = AUDIT_NOTES_REF
) -> str | None:
    """Append ``line`` to the note of commit ``rev`` (HEAD when ``rev`` is unknown here) under ``ref``.

    A line the note already holds is not added again (a re-run adds nothing).

    Args:
        path: inside the repository.
        line: one line of text (an anchor's JSON).
        rev: the commit to annotate (the release commit); HEAD when not given or not in this clone.
        ref: the notes ref.

    Returns:
        The annotated commit's sha, or ``None`` when the line was already there.

    Raises:
        GitError: when ``path`` is not in a repository, it has no commit, or git refuses.
    """
    import git

    if "\n" in line or not line.strip():
        raise GitError("a note line is one non-empty line")
    repo = _repo(path)
    sha = resolve(path, rev) if rev else None
    if sha is None:
        if not repo.head.is_valid():
            raise GitError(f"{repo.working_tree_dir}: no commit to attach the audit anchor to")
        sha = repo.head.commit.hexsha
    try:
        existing = repo.git.notes("--ref", ref, "show", sha)
    except git.GitCommandError:
        existing = ""
    lines = [x for x in existing.splitlines() if x.strip()]
    if line in lines:
        return None
    try:
        with repo.git.custom_environment(**_identity_env(repo)):
            repo.git.notes("--ref", ref, "add", "--force", "--message", "\n".join([*lines, line]), sha)
    except git.GitCommandError as exc:
        raise GitError(f"cannot write the note on {sha[:12]} under {ref}: {_first_line(exc)}") from None
    return sha


def note_lines(path: str | os.PathLike[str], ref: str = AUDIT_NOTES_REF) -> list[str] | None:
    """Every non-empty line of every note under ``ref`` (notes in commit order of their objects).

    Returns:
        The lines (``[]`` when the ref does not exist), or ``None`` when ``path`` is not in a
        git repository.
    """
    import git

    repo = _repo(path, quiet=True)
    if repo is None:
        return None
    try:
        listing = repo.git.notes("--ref", ref, "list")
    except git.GitCommandError:
        return []
    out: list[str] = []
    for entry in listing.splitlines():
        blob = entry.split()[0] if entry.strip() else ""
        if not blob:
            continue
        text = repo.odb.stream(bytes.fromhex(blob)).read().decode("utf-8", errors="replace")
        out.extend(x for x in text.splitlines() if x.strip())
    return out


def push_notes(
    path: str | os.PathLike[str], remote: str = "origin", ref: str = AUDIT_NOTES_REF, tries: int = 3
) -> None:
    """Push the notes ref to ``remote``, merging the remote's notes first when it moved.

    A CI clone starts without the remote's notes, and two runners may append at once, so a
    rejected push fetches the remote's ref, merges it line by line (``git notes merge -s
    cat_sort_uniq``: both sides' anchors are kept) and pushes again, up to ``tries`` times.
    By hand: ``git push origin refs/notes/promote-audit``.

    Raises:
        GitError: when the remote cannot be reached or keeps rejecting the push.
    """
    import git

    repo = _repo(path)
    last = ""
    for _ in range(max(1, tries)):
        try:
            repo.git.push("--porcelain", remote, f"{ref}:{ref}")
            return
        except git.GitCommandError as exc:
            last = _first_line(exc)
        try:
            repo.git.fetch("--quiet", "--no-tags", remote, f"+{ref}:{_INCOMING}")
        except git.GitCommandError as exc:
            raise GitError(
                f"push of {ref} to {remote!r} failed: {last}; fetch failed too: {_first_line(exc)}"
            ) from None
        try:
            with repo.git.custom_environment(**_identity_env(repo)):
                repo.git.notes("--ref", ref, "merge", "--quiet", "--strategy", "cat_sort_uniq", _INCOMING)
        except git.GitCommandError as exc:
            raise GitError(f"cannot merge {remote!r}'s {ref} into ours: {_first_line(exc)}") from None
    raise GitError(f"push of {ref} to {remote!r} failed: {last}")
