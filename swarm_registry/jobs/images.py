"""`inv images.rm REPO:TAG [--yes]`: delete a manifest through the API (TLS-verified, our one client).

Refused before anything is sent (exit 2) when registry.delete_enabled is false. The facts are read
over the API (the tag's digest, the other tags of the repository pointing at the same digest, the
manifest's size); the plan (steps/image_delete.py) names every tag that goes; `--check` prints it,
`inv --dry` prints the request, a run asks for confirmation (or --yes) and then checks the tag is gone.
"""
from __future__ import annotations

import sys
from typing import Callable

from ..registry_http import RegistryClient, RegistryError
from ..results import CHANGED, FAILED, StepResult, show
from ..settings import Settings, SettingsError
from ..steps import image_delete as op
from .runner import CHECK, DRY, RUN

Out = Callable[[str], None]
CONTROL = "control"


def rm(settings: Settings, out: Out, *, image: str, password: str, yes: bool = False, mode: str = RUN,
       confirm: Callable[[str], str] = input) -> int:
    repo, ref = op.parse_ref(image, settings.registry.endpoint)
    op.refuse_without_delete(settings)
    from ..remote.executor import registry_api

    with registry_api(settings):
        return _rm(settings, out, repo, ref, password, yes, mode, confirm)


def _rm(settings: Settings, out: Out, repo: str, ref: str, password: str, yes: bool, mode: str,
        confirm: Callable[[str], str]) -> int:
    try:
        client = RegistryClient(settings, password, timeout=30)  # a delete is not urgent; a loaded registry is slow
        digest, size, _ = client.image_size(repo, ref)
        tag_digests = {t: client.manifest_digest(repo, t) for t in client.tags(repo)}
    except RegistryError as exc:
        why = f"{repo}{'@' if ref.startswith('sha256:') else ':'}{ref} is not in the registry (HTTP 404)" \
            if str(exc).endswith("HTTP 404") else str(exc)
        show(out, StepResult(CONTROL, op.STEP, FAILED, why))
        return 1
    p = op.plan(repo, ref, digest, tag_digests, size)
    if mode == CHECK:
        show(out, StepResult(CONTROL, op.STEP, CHANGED, f"would {p.message}"), check=True)
        return 0
    if mode == DRY:
        out(f"{CONTROL:<14} {op.STEP:<22} $ DELETE https://{settings.registry.endpoint}{p.path}  # {p.message}")
        return 0
    if not yes:
        if not sys.stdin.isatty():
            raise SettingsError([f"images.rm: {p.message}: confirm with --yes when not on a terminal"])
        also = f" (also deletes tags {', '.join(p.others)}: they point at the same manifest)" if p.others else ""
        if confirm(f"{p.message}{also}. Type yes to delete: ").strip() != "yes":
            raise SettingsError(["images.rm: not confirmed; nothing was deleted"])
    try:
        done, message = op.delete_verdict(client.delete_manifest(repo, digest), p)
        if done:
            left = [t for t in client.tags(repo) if t in p.tags] if client.get(
                f"/v2/{repo}/tags/list").status_code == 200 else []
            if left:
                done, message = False, f"DELETE answered 202 but tags {', '.join(left)} are still listed"
    except RegistryError as exc:
        done, message = False, str(exc)
    show(out, StepResult(CONTROL, op.STEP, CHANGED if done else FAILED, message))
    return 0 if done else 1
