"""Who is acting: the identity a platform verified, not a typed name.

In order:

1. Inside a CI job, the identity the CI platform authenticated and put in the job's
   environment: GitHub Actions ``GITHUB_TRIGGERING_ACTOR`` (else ``GITHUB_ACTOR``), Azure DevOps
   ``BUILD_REQUESTEDFOREMAIL`` (else ``BUILD_REQUESTEDFOR``), GitLab ``GITLAB_USER_LOGIN``. An
   approval job that runs in a protected environment (GitHub environments with required
   reviewers, Azure DevOps environment approvals, GitLab protected environments) is where the
   platform checks that this person may run it.
2. Against a tracking server with authentication (``mlflow server --app-name basic-auth``),
   the user the server authenticated (``MLFLOW_TRACKING_USERNAME`` / ``_PASSWORD``).
3. Otherwise the name given with ``--by``, recorded as unverified.

``--by`` that disagrees with a verified identity is refused: the record names who really acted.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from promoter import errors
from promoter.core.approvals import Approver

if TYPE_CHECKING:  # pragma: no cover
    from promoter.registry import Registry

# (provider, variable that says we are in its CI, variables naming the authenticated user)
CI_IDENTITIES = (
    ("github", "GITHUB_ACTIONS", ("GITHUB_TRIGGERING_ACTOR", "GITHUB_ACTOR")),
    ("azure", "TF_BUILD", ("BUILD_REQUESTEDFOREMAIL", "BUILD_REQUESTEDFOR")),
    ("gitlab", "GITLAB_CI", ("GITLAB_USER_LOGIN",)),
)
PROVIDER_NAMES = {
    "github": "GitHub Actions",
    "azure": "Azure DevOps",
    "gitlab": "GitLab CI",
    "mlflow": "the tracking server",
}


def ci_identity(environ: Mapping[str, str]) -> tuple[Approver, str] | None:
    """The identity a CI platform authenticated for this job, with the variable it came from."""
    for provider, flag, names in CI_IDENTITIES:
        if environ.get(flag, "").strip().lower() not in ("true", "1"):
            continue
        for var in names:
            name = environ.get(var, "").strip()
            if name:
                return Approver(name, provider, verified=True), var
    return None


def resolve(by: str | None, environ: Mapping[str, str], registry: "Registry | None" = None) -> Approver:
    """The acting identity (see the module docstring).

    Args:
        by: the ``--by`` option, if given.
        environ: the process environment (CI variables).
        registry: the tracking server to ask for its authenticated user.

    Raises:
        InvalidInput: ``--by`` disagrees with the verified identity, or no identity at all.
    """
    verified: tuple[Approver, str] | None = ci_identity(environ)
    if verified is None and registry is not None:
        user = registry.authenticated_user()
        if user:
            verified = Approver(user, "mlflow", verified=True), f"user of {registry.tracking_uri}"
    typed = (by or "").strip()
    if verified is not None:
        who, source = verified
        if typed and not _same(typed, who):
            raise errors.InvalidInput(
                f"--by {typed!r} disagrees with the identity {PROVIDER_NAMES[who.provider]} verified "
                f"({source}={who.name}); omit --by, the verified identity is recorded"
            )
        return who
    if not typed:
        raise errors.InvalidInput(
            "--by must name who acts (no CI platform or authenticating tracking server verified an identity)"
        )
    return Approver(typed, "local", verified=False)


def _same(typed: str, who: Approver) -> bool:
    provider, sep, name = typed.partition(":")
    if sep and provider.lower() in PROVIDER_NAMES:
        return provider.lower() == who.provider and name.lower() == who.name.lower()
    return typed.lower() == who.name.lower()


def how_to_verify(env: str) -> str:
    """What to do when a policy needs a verified identity and none was found."""
    return (
        f"approvals.{env} requires a verified identity: approve from the approval job of the protected "
        f"'{env}' environment in CI (the platform's authenticated actor is recorded), or against a tracking "
        "server with authentication (mlflow server --app-name basic-auth; set MLFLOW_TRACKING_USERNAME and "
        "MLFLOW_TRACKING_PASSWORD)"
    )
