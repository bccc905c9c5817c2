"""`inv storage.credentials` and `inv storage.migrate`: the S3 keys, and moving a filesystem registry's
data into the bucket (steps/migrate.py), then switching the registry to s3 with setup."""
from __future__ import annotations

from typing import Callable

import dataclasses

from .. import s3creds
from ..settings import Settings, SettingsError
from ..steps import bucket, migrate, preflight
from ..wanted import wanted
from .gc import maintenance_hosts, maintenance_job
from .runner import RUN, Job, run_plan
from .setup import setup

Out = Callable[[str], None]


def credentials(settings: Settings, access_key: str, secret_key: str, out: Out) -> int:
    """Keep the S3 keys in state_dir (0600); setup delivers them inside the registry's config secret."""
    changed = s3creds.store(settings.state_dir, access_key, secret_key)
    path = settings.state_dir / s3creds.FILE
    out(f"storage: S3 keys {'stored in' if changed else 'unchanged in'} {path} (0600); "
        "inv setup delivers them to the registry as a swarm secret")
    return 0


def migrate_job(settings: Settings, w, mode: str) -> Job:
    reg = settings.registry.node

    def plan(w, manager: str, found: dict):
        m, r = found[manager], found[reg]
        if migrate.runs_s3(m):
            return [(manager, f"{settings.registry.service} runs on s3 already: nothing to migrate (inv setup "
                              "converges it)")]
        if not r.data_files:
            return [(reg, f"{settings.registry.data_dir} on {reg} holds no registry data: nothing to migrate; "
                          "inv setup starts the registry on s3")]
        return [bucket.plan(w, reg, r), migrate.readonly_plan(w, manager, m), migrate.copy_plan(w, reg, r)]

    job = maintenance_job(settings, "facts", w.password, mode, plan, w=w, base=("docker", "data"),
                          extra_facts=lambda host: bucket.fact_names(settings, host), fact_stdin=bucket.fact_stdin(w))
    return dataclasses.replace(job, cluster_steps=(bucket.STEP, migrate.READONLY, migrate.COPY))


def migrate_data(settings: Settings, out: Out, *, mode: str = RUN, password: str | None = None,
                 sudo_password: str | None = None) -> int:
    """Copy the registry's data from registry.node's data_dir into the bucket (read-only meanwhile), then
    setup with storage s3; when the copy fails, the filesystem registry is put back read-write."""
    if settings.storage.driver != "s3":
        raise SettingsError(["storage.migrate copies into S3: set storage.driver: s3 and storage.s3 in the "
                             "settings first (registry.node is where the data is now)"])
    w = wanted(settings, write_certs=mode == RUN, password=password)
    code = run_plan(settings, maintenance_hosts(settings), migrate_job(settings, w, mode), out, mode=mode,
                    sudo_password=sudo_password)
    if mode != RUN:
        out("storage: then inv setup switches the registry to s3 (see inv --dry setup)")
        return code
    if code != 0:
        manager = settings.manager.name
        out("storage: the copy did not finish: putting the filesystem registry back read-write")
        back = Job("facts", lambda h: ("docker",), lambda h, f: preflight.host_verdict(f, True),
                   lambda found, usable: [migrate.back_plan(w, manager)] if manager in usable else [])
        run_plan(settings, [manager], back, out, mode=mode, sudo_password=sudo_password)
        return code
    out("storage: data copied; switching the registry to s3 with setup")
    return setup(settings, out, mode=mode, password=password, sudo_password=sudo_password)
