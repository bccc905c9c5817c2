"""`credential-helper`: pass + docker-credential-pass, a GPG key, `pass init`, credsStore in config.json."""
from __future__ import annotations

from ..release import helper_binary
from ..results import OK
from ..settings import Settings
from ..steps import credential_store
from .runner import RUN, Job, run_plan


def credential_helper(settings: Settings, hosts: list[str], out, *, mode: str = RUN,
                      sudo_password: str | None = None) -> int:
    binary = helper_binary(settings)  # verified before anything remote runs
    job = Job("facts", lambda host: ("store",), lambda host, f: (OK, "read"),
              lambda found, usable: [credential_store.plan(settings, settings.hosts[h], found[h], binary)
                                     for h in usable], per_host=True)
    return run_plan(settings, hosts, job, out, mode=mode, sudo_password=sudo_password)
