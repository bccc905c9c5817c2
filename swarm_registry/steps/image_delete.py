"""images.rm: delete a manifest through the registry's API (pure: the reference, the plan, its message).

The registry deletes manifests by digest, so every tag pointing at that digest goes with it: the plan
names them all, and `--check`/`--dry` show them before anything is sent. Blobs stay on disk until
`inv gc` (which also removes the layers only this manifest used).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from ..settings import SettingsError

STEP = "images.rm"
# distribution's reference grammar: path components, a tag, or a digest
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
REPO_RE = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
TAG_RE = re.compile(r"[\w][\w.-]{0,127}")
DIGEST_RE = re.compile(r"sha256:[0-9a-f]{64}")


def parse_ref(text: str, endpoint: str) -> tuple[str, str]:
    """'REPO:TAG' or 'REPO@sha256:...' (an 'ENDPOINT/' prefix is allowed) -> (repo, tag or digest)."""
    ref = text[len(endpoint) + 1:] if text.startswith(endpoint + "/") else text
    if "@" in ref:
        repo, _, ref_part = ref.partition("@")
        ok = DIGEST_RE.fullmatch(ref_part)
    else:
        repo, sep, ref_part = ref.rpartition(":")
        ok = sep and "/" not in ref_part and TAG_RE.fullmatch(ref_part)
    if not ok or not REPO_RE.fullmatch(repo) or len(repo) > 255:
        raise SettingsError([f"image {text!r}: must be REPO:TAG or REPO@sha256:DIGEST (REPO: lower-case path "
                             f"components like team/app, optionally after {endpoint}/)"])
    return repo, ref_part


def refuse_without_delete(settings) -> None:
    """Deletes are off: refused before anything is sent (exit 2)."""
    if not settings.registry.delete_enabled:
        raise SettingsError(["images.rm: registry.delete_enabled is false, so the registry refuses deletes: set "
                             "registry.delete_enabled: true and run inv setup first"])


@dataclass(frozen=True)
class DeletePlan:
    repo: str
    ref: str
    digest: str
    size: int | None
    tags: tuple[str, ...]  # every tag that points at `digest`: all of them go

    @property
    def path(self) -> str:
        return f"/v2/{self.repo}/manifests/{self.digest}"

    @property
    def message(self) -> str:
        from ..progress import human

        size = "size unknown" if self.size is None else human(self.size)
        gone = f"tags {', '.join(self.tags)}" if len(self.tags) > 1 else \
            f"tag {self.tags[0]}" if self.tags else "no tag (untagged)"
        return f"delete manifest {self.repo}@{self.digest[:19]}... ({size}; {gone}); blobs stay until inv gc"

    @property
    def others(self) -> tuple[str, ...]:
        """Tags deleted besides the one asked for."""
        return tuple(t for t in self.tags if t != self.ref)


def plan(repo: str, ref: str, digest: str, tag_digests: dict[str, str], size: int | None) -> DeletePlan:
    return DeletePlan(repo, ref, digest, size, tuple(sorted(t for t, d in tag_digests.items() if d == digest)))


def delete_verdict(code: int, p: DeletePlan) -> tuple[bool, str]:
    if code == 202:
        return True, f"deleted manifest {p.repo}@{p.digest[:19]}... (" + (
            f"tags {', '.join(p.tags)}" if p.tags else "untagged") + "); run inv gc to reclaim its blobs"
    if code == 405:
        return False, ("the registry answered 405: it refuses deletes, because it is read-only (a gc or backup "
                       "running, or left read-only: inv setup) or runs without registry.delete_enabled (inv setup)")
    if code == 404:
        return False, f"manifest {p.repo}@{p.digest[:19]}... is already gone (HTTP 404)"
    return False, f"DELETE {p.path}: HTTP {code}"
