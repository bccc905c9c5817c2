"""Make or reuse the registry's certificates in state_dir (control machine only, no SSH).

mode ca: `ca.key`/`ca.crt` sign `<registry.host>.crt`; nodes trust the CA, so the server
certificate can be renewed without touching them. mode self-signed: one self-signed
server certificate, which is also what nodes trust. Existing files are kept while they
match the settings and stay valid longer than `renew_before_days`.
"""
from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field

from .settings import Settings
from .state import StateDir, StateError

CA_FILES = ("ca.key", "ca.crt")
# Once ca.key/ca.crt passed every check, their sha256 and the CA's expiry: trust-cert then reads the
# trust anchor without parsing it again, so its start-up skips importing pki (cryptography.x509, ~25 ms,
# bench/HISTORY.md). Other bytes, or an unreadable record, mean a full check again.
CA_CHECKED = "ca.checked"


@dataclass
class CertBundle:
    """The PEM bytes in force after `ensure`, and what changed to get there."""
    server_key: bytes
    server_cert: bytes
    ca_cert: bytes | None
    changed: list[str] = field(default_factory=list)  # file names written (or that would be, in check mode)
    reasons: list[str] = field(default_factory=list)

    @property
    def trust_anchor(self) -> bytes:
        """What nodes install as certs.d/HOST:PORT/ca.crt: the CA, or the self-signed cert."""
        return self.ca_cert if self.ca_cert is not None else self.server_cert


def server_files(settings: Settings) -> tuple[str, str]:
    return f"{settings.registry.host}.key", f"{settings.registry.host}.crt"


def anchor_path(settings: Settings):
    """The state file nodes and this machine verify the registry with: ca.crt, or the self-signed cert."""
    return settings.state_dir / ("ca.crt" if settings.cert.mode == "ca" else server_files(settings)[1])


def server_names(settings: Settings) -> list[str]:
    return list(dict.fromkeys([settings.registry.host, *settings.cert.alt_names]))


def _digest(key: bytes, cert: bytes) -> str:
    return hashlib.sha256(b"%d:" % len(key) + key + cert).hexdigest()


def _checked_until(state: StateDir, key: bytes, cert: bytes) -> dt.datetime | None:
    """The CA's expiry as recorded by a full check of these very bytes (CA_CHECKED), else None."""
    try:
        digest, not_after = (state.read(CA_CHECKED) or b"").decode("ascii").split()
        until = dt.datetime.fromisoformat(not_after)
    except (UnicodeDecodeError, ValueError):
        return None
    return until if digest == _digest(key, cert) and until.tzinfo is not None else None


def _ca(settings: Settings, state: StateDir, now: dt.datetime, bundle: CertBundle,
        record: bool = False) -> tuple[bytes, bytes]:
    """The CA's key and cert, made when both are missing, else checked (with `record`, a passed full check
    is written to CA_CHECKED, so that the next runs skip it)."""
    key, cert = state.read("ca.key"), state.read("ca.crt")
    if key is None and cert is None:
        from . import pki

        key, cert = pki.make_ca(f"{settings.registry.stack} registry CA", settings.cert.key_type, now=now)
        bundle.changed += list(CA_FILES)
        bundle.reasons.append("no CA yet: made one")
        return key, cert
    where = state.path
    if key is None or cert is None:
        missing = "ca.key" if key is None else "ca.crt"
        raise StateError([f"state_dir {str(where)!r} holds one half of the CA ({missing} is missing): "
                          "restore it, or remove both ca.* files to make a new CA (every node must then trust it again)"])
    not_after = _checked_until(state, key, cert)
    if not_after is None:
        not_after = _check_ca(where, key, cert)
        if record:
            state.write(CA_CHECKED, f"{_digest(key, cert)} {not_after.isoformat()}\n".encode())
    if not_after <= now:
        raise StateError([f"state file {str(where / 'ca.crt')!r} expired {not_after:%Y-%m-%d}: "
                          "remove both ca.* files to make a new CA (every node must then trust it again)"])
    return key, cert


def _check_ca(where, key: bytes, cert: bytes) -> dt.datetime:
    """Refuse a CA that cannot be read, does not match its key or is no CA; return its expiry."""
    from . import pki

    try:
        info = pki.inspect(cert)
        matches = pki.key_matches(cert, key)
    except ValueError as exc:
        raise StateError([f"state file {str(where / 'ca.crt')!r} cannot be read ({exc}): restore or remove ca.*"])
    if not matches:
        raise StateError([f"state file {str(where / 'ca.crt')!r} does not match ca.key (a foreign CA): "
                          "restore the matching pair, or remove both ca.* files to make a new CA"])
    if not info.is_ca:
        raise StateError([f"state file {str(where / 'ca.crt')!r} is not a CA certificate: remove both ca.* files"])
    return info.not_after


def ensure(settings: Settings, *, write: bool = True, now: dt.datetime | None = None,
           force_renew: bool = False) -> CertBundle:
    """Reuse or (re)issue the certificates; with write=False only report what would change."""
    from . import pki

    now = now or pki.utcnow()
    state = StateDir(settings.state_dir)
    state.check()
    bundle = CertBundle(b"", b"", None)
    ca = _ca(settings, state, now, bundle) if settings.cert.mode == "ca" else None
    key_name, cert_name = server_files(settings)
    key, cert = state.read(key_name), state.read(cert_name)
    names = server_names(settings)
    reason = None
    if key is None or cert is None:
        reason = "no server certificate yet"
    elif force_renew:
        reason = "renewal asked for"
    else:
        reason = pki.renewal_reason(cert, key, names=names, key_type=settings.cert.key_type,
                                    renew_before_days=settings.cert.renew_before_days, now=now,
                                    ca_cert_pem=ca[1] if ca else None)
    if reason is not None or bundle.changed:
        key, cert = pki.make_server_cert(names, settings.cert.key_type, settings.cert.days, ca=ca, now=now)
        bundle.changed += [key_name, cert_name]
        bundle.reasons.append(f"server certificate issued: {reason or 'new CA'}")
    bundle.server_key, bundle.server_cert = key, cert
    bundle.ca_cert = ca[1] if ca else None
    if write:
        for name, data in ((key_name, key), (cert_name, cert)) + (
                (("ca.key", ca[0]), ("ca.crt", ca[1])) if ca else ()):
            state.write(name, data)
    return bundle


def load_existing(settings: Settings, now: dt.datetime | None = None) -> CertBundle:
    """The certificates as they are, for tasks that must not issue any (refuses missing/expired ones)."""
    bundle = ensure(settings, write=False, now=now)
    if bundle.changed:
        raise StateError([f"certificates in {str(settings.state_dir)!r} are missing or stale "
                          f"({'; '.join(bundle.reasons)}): run `inv certs` (or `inv setup`) first"])
    return bundle


def trust_anchor(settings: Settings, *, write: bool = True, now: dt.datetime | None = None) -> tuple[bytes, list[str]]:
    """The certificate nodes must trust, and the state files made to get it.

    mode ca needs only the CA (made when missing). mode self-signed needs the server
    certificate: the existing one is used as it is (renewal is `inv renew-cert`'s job,
    since the running registry serves it), a missing one is issued.
    """
    now = now or dt.datetime.now(dt.timezone.utc)
    state = StateDir(settings.state_dir)
    state.check()
    if settings.cert.mode == "ca":
        bundle = CertBundle(b"", b"", None)
        key, cert = _ca(settings, state, now, bundle, record=write)
        if write and bundle.changed:
            state.write("ca.key", key)
            state.write("ca.crt", cert)
        return cert, bundle.changed
    existing = state.read(server_files(settings)[1])
    if existing is not None:
        return existing, []
    bundle = ensure(settings, write=write, now=now)
    return bundle.trust_anchor, bundle.changed
