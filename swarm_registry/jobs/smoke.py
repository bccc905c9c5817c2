"""smoke-test: push and pull through the registry from the nodes, then read it over the API.

1. build a tiny image from scratch on one node (a file holding a unique token), or tag
   `--image REF`; 2. push it, remove it, pull it back there and on every other node (the
   image ID must match everywhere); 3. from this machine, TLS-verified: /v2/ 401 without
   and with a wrong password, 200 with the right one, the repository in the catalog, the
   tag in tags/list, the manifest digest equal to the one docker reported on push;
   4. remove the local images (and the tag, when deletes are enabled, unless --keep).
"""
from __future__ import annotations

import io
import secrets
import tarfile
import time
from typing import Callable

from .. import commands
from ..registry_http import RegistryClient, RegistryError
from ..results import CHANGED, FAILED, OK, Report
from ..settings import Settings

Out = Callable[[str], None]
SMOKE_REPO = "swarm-registry-smoke"
CONTROL = "control"


def build_context(token: str) -> bytes:
    """A build context (tar): FROM scratch, one file holding the token."""
    files = {"Dockerfile": b"FROM scratch\nCOPY token /token\nLABEL io.swarm-registry.smoke=1\n",
             "token": token.encode() + b"\n"}
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def smoke_test(settings: Settings, out: Out, *, password: str, image: str | None = None, keep: bool = False,
               sudo_password: str | None = None) -> int:
    from ..remote.executor import Executor

    r = settings.registry
    token = secrets.token_hex(8)
    repo = SMOKE_REPO if image is None else f"{SMOKE_REPO}-{image.split('/')[-1].split(':')[0].split('@')[0]}"
    ref = f"{r.endpoint}/{repo}:{token}"
    builder = settings.manager.name
    others = [h for h in settings.hosts if h != builder]
    state: dict = {}
    out(f"smoke-test: {ref} (built on {builder})")
    with Executor(settings, list(settings.hosts), out=out, sudo_password=sudo_password) as ex:
        ex.run.hosts.append(CONTROL)

        def timed(fn):
            def step(*args):
                t0 = time.monotonic()
                status, msg = fn(*args)
                return status, f"{msg} ({time.monotonic() - t0:.1f}s)"
            return step

        @timed
        def build(session):
            if image is None:
                session.run(commands.image_build(ref, build_context(token))).expect_ok("docker build")
                return CHANGED, f"built {ref} from scratch (token {token})"
            session.run(commands.image_pull_if_missing(image)).expect_ok(f"get {image}")
            session.run(commands.image_tag(image, ref)).expect_ok("docker tag")
            return CHANGED, f"tagged {image} as {ref}"

        @timed
        def push(session):
            digests = session.run(commands.image_push(ref)).expect_ok("docker push").split()
            mine = [d for d in digests if d.startswith(f"{r.endpoint}/{repo}@")]
            if not mine:
                return FAILED, f"pushed, but docker reported no digest for {r.endpoint}/{repo}"
            state["digest"] = mine[0].split("@", 1)[1]
            session.run(commands.image_remove([ref])).expect_ok("docker rmi")
            state["id"] = session.run(commands.image_pull(ref)).expect_ok("docker pull (back on the same node)")
            return CHANGED, f"pushed {state['digest'][:19]}..., removed, pulled back"

        @timed
        def pull(session):
            got = session.run(commands.image_pull(ref)).expect_ok("docker pull")
            if got != state.get("id"):
                return FAILED, f"pulled image ID {got[:19]} differs from {str(state.get('id'))[:19]}"
            return OK, f"pulled, same image ID {got[:19]}"

        ex.step("build", build, [builder])
        if not ex.run.has_failed(builder):
            ex.step("push + pull back", push, [builder])
        if not ex.run.has_failed(builder):
            ex.step("pull", pull, others)
        if "digest" in state:
            t0 = time.monotonic()
            status, msg = api_checks(settings, password, repo, token, state["digest"])
            ex.record(CONTROL, "api", status, f"{msg} ({time.monotonic() - t0:.1f}s)", time.monotonic() - t0)

        def cleanup(session):
            res = session.run(commands.image_remove([ref]))
            return (OK, "local image removed") if res.ok or "No such image" in res.stderr else (FAILED, res.error())

        ex.step("cleanup", cleanup, list(settings.hosts))
        if "digest" in state and not keep:
            if r.delete_enabled:
                try:
                    code = RegistryClient(settings, password).delete_manifest(repo, state["digest"])
                    ex.record(CONTROL, "delete tag", OK if code == 202 else FAILED, f"DELETE manifest: HTTP {code}")
                except RegistryError as exc:
                    ex.record(CONTROL, "delete tag", FAILED, str(exc))
            else:
                ex.record(CONTROL, "delete tag", OK, f"kept {repo}:{token} (registry.delete_enabled is false)")
    out(ex.run.recap())
    return ex.run.exit_code()


def api_checks(settings: Settings, password: str, repo: str, tag: str, digest: str) -> tuple[str, str]:
    try:
        anon = RegistryClient(settings, None)
        if (code := anon.get("/v2/").status_code) != 401:
            return FAILED, f"/v2/ without credentials answered {code}, not 401"
        wrong = RegistryClient(settings, password + "-wrong")
        if (code := wrong.get("/v2/").status_code) != 401:
            return FAILED, f"/v2/ with a wrong password answered {code}, not 401"
        client = RegistryClient(settings, password)
        if (code := client.get("/v2/").status_code) != 200:
            return FAILED, f"/v2/ with the right password answered {code}, not 200"
        repos = client.catalog()
        if repo not in repos:
            return FAILED, f"_catalog does not list {repo} ({len(repos)} repositories)"
        if tag not in client.tags(repo):
            return FAILED, f"tags/list of {repo} lacks {tag}"
        served = client.manifest_digest(repo, tag)
        if served != digest:
            return FAILED, f"manifest digest {served} differs from the pushed {digest}"
    except RegistryError as exc:
        return FAILED, str(exc)
    return OK, (f"/v2/ 401 anonymous and with a wrong password, 200 with it; catalog lists {repo} "
                f"({len(repos)} repos); tag listed; digest matches")


def catalog(settings: Settings, out: Out, *, password: str, tags: bool = False) -> int:
    """Print every repository (and its tags with their sizes); raises RegistryError with one clear line."""
    from ..remote.executor import registry_api

    with registry_api(settings):
        return _catalog(settings, out, password, tags)


def _catalog(settings: Settings, out: Out, password: str, tags: bool) -> int:
    client = RegistryClient(settings, password)
    repos = client.catalog()
    found = []
    for repo in repos:
        if tags:
            sizes = tag_sizes(client, repo)  # tag -> (bytes or None, platforms)
            found.append({"name": repo, "tags": list(sizes), "sizes": {t: b for t, (b, _) in sizes.items()}})
            out(f"{repo}: {', '.join(shown_size(t, *v) for t, v in sizes.items())}")
        else:
            found.append({"name": repo})
            out(repo)
    out(f"({len(repos)} repositories at {settings.registry.endpoint})")
    if isinstance(out, Report):
        out.add(endpoint=settings.registry.endpoint, repositories=found)
    return 0


def tag_sizes(client: RegistryClient, repo: str) -> dict[str, tuple[int | None, int]]:
    """tag -> (bytes, platforms): the config and layer sizes its manifest declares (what a pull fetches
    at most; a layer shared by several tags counts in each)."""
    found = {}
    for tag in client.tags(repo):
        _, size, platforms = client.image_size(repo, tag)
        found[tag] = (size, platforms)
    return found


def shown_size(tag: str, size: int | None, platforms: int) -> str:
    from ..progress import human

    what = "size unknown (schema 1)" if size is None else human(size)
    return f"{tag} ({what}{f', {platforms} platforms' if platforms > 1 else ''})"
