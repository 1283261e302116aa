"""The CI templates `promote` ships (package data), and their rendering for a model repository.

One copy of each template lives here, under ``ci/<provider>/``; the repository's ``ci/`` folder
keeps only its README and lint tooling. As shipped, a template installs `promote` from the
checkout (``PROMOTE_REQUIREMENT: "."``: the promote repository runs its own templates that
way); :func:`render_ci` pins the installed tool's version instead (``promote==<version>``),
which is what ``promote init`` writes into a new project.

This package is low in the layers: it imports nothing of promote's but :mod:`promoter.errors`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from importlib import metadata, resources
from typing import Any

from promoter.errors import InvalidInput, PromoteError

PROVIDERS = ("github", "azure", "gitlab")
# provider -> {where the file goes in a model repository: the template's name in this package}
FILES: dict[str, dict[str, str]] = {
    "github": {".github/workflows/promote.yml": "ci/github/promote.yml"},
    "azure": {"azure-pipelines.yml": "ci/azure/azure-pipelines.yml"},
    # package data keeps no dotfiles: the names are mapped here
    "gitlab": {".gitlab-ci.yml": "ci/gitlab/gitlab-ci.yml", ".gitlab/promote-jobs.yml": "ci/gitlab/promote-jobs.yml"},
}
DISTRIBUTION = "promote"
# The one line per template that says what `pip install` installs.
_REQUIREMENT = re.compile(r'^(?P<indent>\s*)PROMOTE_REQUIREMENT: "\."(?P<rest>.*)$', re.M)
_PROJECT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*")

# The GitLab variables promote reads to build an event (promoter.core.events.from_gitlab, plus the
# manual inputs): what the child pipeline of `promote projects --changed --format gitlab` is handed.
GITLAB_EVENT_VARIABLES: tuple[str, ...] = (
    "GITLAB_CI",
    "CI_PIPELINE_SOURCE",
    "CI_PIPELINE_URL",
    "CI_DEFAULT_BRANCH",
    "CI_COMMIT_SHA",
    "CI_COMMIT_BRANCH",
    "CI_COMMIT_REF_NAME",
    "CI_COMMIT_TAG",
    "CI_MERGE_REQUEST_IID",
    "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME",
    "CI_MERGE_REQUEST_TARGET_BRANCH_NAME",
    "CI_MERGE_REQUEST_SOURCE_BRANCH_SHA",
    "CI_EXTERNAL_PULL_REQUEST_SOURCE_BRANCH_NAME",
    "CI_EXTERNAL_PULL_REQUEST_TARGET_BRANCH_NAME",
    "GITLAB_USER_LOGIN",
    "PROMOTE_ACTION",
    "PROMOTE_REASON",
    "PROMOTE_TO_VERSION",
)
GITLAB_JOBS_FILE = ".gitlab/promote-jobs.yml"


def template_text(name: str) -> str:
    """The text of a shipped template, by its name in this package (``ci/github/promote.yml``).

    Raises:
        InvalidInput: no such template.
    """
    node = resources.files(__name__).joinpath(*name.split("/"))
    if not node.is_file():
        raise InvalidInput(f"no CI template {name!r} in promote's package data")
    return node.read_text(encoding="utf-8")


def installed_version() -> str:
    """The version of the installed `promote` distribution (what rendered templates pin).

    Raises:
        PromoteError: `promote` is imported from a folder that was never installed.
    """
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        raise PromoteError(
            "the promote distribution is not installed (pip install promote, or pip install -e .): "
            "its version is what the CI templates pin"
        ) from None


def _check_project(project: str, config_dir: str) -> str:
    rel = config_dir.replace("\\", "/").strip().rstrip("/")
    rel = rel[2:] if rel.startswith("./") else rel
    if not _PROJECT_NAME.fullmatch(project or ""):
        raise InvalidInput(f"project name {project!r}: must be letters, digits, '.', '_' or '-'")
    if rel not in ("configs", f"models/{project}/configs"):
        raise InvalidInput(
            f"config_dir {config_dir!r}: CI finds a project at configs/ (the repository's root project) "
            f"or models/{project}/configs/; put project {project!r} in one of them"
        )
    return rel


def render_ci(provider: str, *, project: str, config_dir: str, version: str | None = None) -> dict[str, str]:
    """The CI files for a model repository, as ``{relative path: text}``.

    The files serve every project of the repository (``promote projects --changed`` picks the ones
    an event runs), so a second project needs no second copy. They pin ``promote==<version>``.

    Args:
        provider: ``github``, ``azure`` or ``gitlab``.
        project: the project this is written for (named in the header).
        config_dir: its config folder relative to the repository root: ``configs`` or
            ``models/<project>/configs`` (where CI discovers projects).
        version: the `promote` version to pin (default: the installed one).

    Returns:
        Paths relative to the repository root (``.github/workflows/promote.yml``, ...) -> file text.

    Raises:
        InvalidInput: an unknown provider, a bad project name, or a config folder CI would not find.
    """
    if provider not in FILES:
        raise InvalidInput(f"CI provider {provider!r}: must be one of {', '.join(PROVIDERS)}")
    rel = _check_project(project, config_dir)
    version = version or installed_version()
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9.+!\-]*", version):
        raise InvalidInput(f"version {version!r} is not a version pip can pin")
    out: dict[str, str] = {}
    for target, name in FILES[provider].items():
        text = template_text(name)
        text, n = _REQUIREMENT.subn(
            lambda m: f'{m["indent"]}PROMOTE_REQUIREMENT: "{DISTRIBUTION}=={version}"{m["rest"]}', text
        )
        if n != 1:  # pragma: no cover - tests/ci keeps every template at exactly one
            raise PromoteError(f"CI template {name}: expected one PROMOTE_REQUIREMENT line, found {n}")
        first, _, rest = text.partition("\n")
        header = (
            f"# Written by promote {version} for project {project!r} ({rel}/); the same file runs every\n"
            f"# project of this repository. Upgrading promote: change PROMOTE_REQUIREMENT below.\n"
        )
        out[target] = f"{first}\n{header}{rest}"
    return out


def render_gitlab_child(jobs: Sequence[Mapping[str, Any]], event_variables: Mapping[str, str]) -> str:
    """The child pipeline the GitLab template triggers: one job per selected project.

    Each job extends a hidden job of ``.gitlab/promote-jobs.yml`` (``.promote-<kind>``), names its
    project, holds a resource group of its own (project and environment) and carries the parent
    pipeline's event as JSON (a child pipeline's own ``CI_PIPELINE_SOURCE`` is
    ``parent_pipeline``, which names no event), which the job hands to ``promote --event-file``.

    Args:
        jobs: ``{"project", "environment", "kind"}`` per selected project, ``kind`` one of
            ``merge-request``, ``staging``, ``prod``, ``score``.
        event_variables: the parent's values of :data:`GITLAB_EVENT_VARIABLES`.

    Returns:
        The child pipeline's YAML.
    """
    import yaml

    event_json = json.dumps(
        {k: v for k, v in event_variables.items() if k in GITLAB_EVENT_VARIABLES and v is not None}, sort_keys=True
    )
    doc: dict[str, Any] = {}
    if not jobs:
        doc["no-project"] = {
            "variables": {"GIT_STRATEGY": "none"},
            "script": ["echo 'promote: no project runs for this event (promote projects --changed says why)'"],
        }
    else:
        doc["include"] = [{"local": GITLAB_JOBS_FILE}]
    mr = event_variables.get("CI_MERGE_REQUEST_IID")
    for job in jobs:
        project, env, kind = str(job["project"]), str(job["environment"]), str(job["kind"])
        group = f"promote-{project}-{env}" + (f"-mr-{mr}" if kind == "merge-request" and mr else "")
        doc[f"{project}:{kind}"] = {
            "extends": f".promote-{kind}",
            "variables": {
                "PROMOTE_PROJECT": project,
                "PROMOTE_EVENT_JSON": {"value": event_json, "expand": False},
            },
            "resource_group": group,
        }
    head = "# Generated by `promote projects --changed --format gitlab`: the projects this event runs.\n"
    return head + yaml.safe_dump(doc, sort_keys=False, width=1000)
