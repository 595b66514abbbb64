"""Schema by Alembic migrations, in two branches: the site's tables ("site", in
checkout/migrations/versions/) and the embedded sandbox's ("sandbox", in
checkout/sandbox/migrations/versions/). Each branch builds its own tables only; a site
that talks to a real processor never gets the sandbox's."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"
BRANCHES = {
    "site": MIGRATIONS / "versions",
    "sandbox": Path(__file__).parent / "sandbox" / "migrations" / "versions",
}


def alembic_config(url: str) -> Config:
    config = Config()
    # ConfigParser interpolation: a literal % (in a path or a password) must be doubled.
    config.set_main_option("script_location", str(MIGRATIONS).replace("%", "%%"))
    # One location a line: a folder's name may hold spaces or commas, never a newline.
    config.set_main_option("path_separator", "newline")
    config.set_main_option(
        "version_locations", "\n".join(str(p) for p in BRANCHES.values()).replace("%", "%%"))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def targets(sandbox: bool) -> str:
    """What `upgrade` brings up to date: every branch in sandbox mode, the site's alone
    otherwise (its database then holds no sandbox table)."""
    return "heads" if sandbox else "site@head"


def upgrade(url: str, *, sandbox: bool) -> None:
    command.upgrade(alembic_config(url), targets(sandbox))


def revision(url: str, message: str, branch: str) -> None:
    """Autogenerate a migration for one branch from its own models, against a database that
    is up to date on every branch (env.py compares only that branch's tables)."""
    config = alembic_config(url)
    config.attributes["branch"] = branch
    folder = BRANCHES[branch]
    if any(folder.glob("*.py")):
        command.revision(config, message=message, autogenerate=True, head=f"{branch}@head")
    else:  # the branch's first migration starts the branch
        command.revision(config, message=message, autogenerate=True, head="base",
                         branch_label=branch, version_path=str(folder))
