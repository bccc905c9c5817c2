"""rotate-ca's state in state_dir (control machine only, no SSH).

`start`: the current CA is kept as ca.previous.crt/key, a new CA becomes ca.crt/key, the marker
ca.rotating is written, and a server certificate is issued by the new CA. While the marker exists,
every node trusts both CAs (certs.d/HOST:PORT/ca.crt and ca-previous.crt: setup and trust-cert keep
it so). `finish` removes the marker once the new server certificate runs: from then on the nodes
trust the new CA only; ca.previous.* stay in state_dir (the grace period: a later rotation replaces
them). Each write is atomic and ordered so that an interruption is resumed by the next `start`.
"""
from __future__ import annotations

import datetime as dt

from . import certs
from .settings import Settings, SettingsError
from .state import StateDir

MARKER = "ca.rotating"
PREVIOUS_CRT, PREVIOUS_KEY = "ca.previous.crt", "ca.previous.key"


def in_progress(settings: Settings) -> bool:
    return StateDir(settings.state_dir).read(MARKER) is not None


def previous_anchor(settings: Settings) -> bytes | None:
    """The previous CA, which nodes must still trust: only while a rotation runs."""
    state = StateDir(settings.state_dir)
    return state.read(PREVIOUS_CRT) if state.read(MARKER) is not None else None


def start(settings: Settings, now: dt.datetime | None = None) -> tuple[bytes, bytes, bool]:
    """(previous CA cert, new CA cert, made now): begin a rotation, or resume the one in progress."""
    from . import pki

    if settings.cert.mode != "ca":
        raise SettingsError(["rotate-ca: cert.mode is self-signed: there is no CA to rotate (inv renew-cert "
                             "issues a new self-signed certificate)"])
    now = now or pki.utcnow()
    state = StateDir(settings.state_dir)
    state.check()
    key, crt = state.read("ca.key"), state.read("ca.crt")
    if key is None or crt is None:
        raise SettingsError([f"rotate-ca: no CA in {settings.state_dir} yet: run inv setup (or inv certs) first"])
    if state.read(MARKER) is not None and state.read(PREVIOUS_CRT) not in (None, crt):
        return state.read(PREVIOUS_CRT), crt, False  # resumed: the new CA was made already
    state.write(PREVIOUS_KEY, key)
    state.write(PREVIOUS_CRT, crt)
    state.write(MARKER, f"started {now:%Y-%m-%dT%H:%M:%SZ}\n".encode())
    new_key, new_crt = pki.make_ca(f"{settings.registry.stack} registry CA {now:%Y-%m-%d %H:%M:%S}",
                                   settings.cert.key_type, now=now)
    state.write("ca.key", new_key)
    state.write("ca.crt", new_crt)
    certs.ensure(settings, force_renew=True, now=now)
    return crt, new_crt, True


def finish(settings: Settings) -> bool:
    return StateDir(settings.state_dir).remove(MARKER)
