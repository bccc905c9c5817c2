"""The registry's htpasswd file: bcrypt only (the registry ignores every other scheme).

Pure: parse bytes into ordered entries, change them, render bytes. Hashing uses
`passlib` from the `libpass` distribution: $2y$ as Apache's htpasswd -B writes, at 12 rounds
(passlib's default; htpasswd -B defaults to 5, which is 128 times cheaper to guess against).
Setting a password that already verifies keeps the existing hash, so re-runs change nothing.
"""
from __future__ import annotations

from . import validators as v

ROUNDS = 12


class HtpasswdError(ValueError):
    """A malformed htpasswd file or an invalid user/password."""


def parse(data: bytes | None) -> dict[str, str]:
    """Entries user -> hash, in file order. Blank lines are skipped; anything malformed raises."""
    entries: dict[str, str] = {}
    for n, line in enumerate((data or b"").decode("utf-8").splitlines(), 1):
        if not line.strip():
            continue
        user, sep, hashed = line.partition(":")
        if not sep or not user or not hashed:
            raise HtpasswdError(f"htpasswd line {n} is not 'user:hash'")
        if not hashed.startswith(("$2y$", "$2b$", "$2a$")):
            raise HtpasswdError(f"htpasswd line {n} (user {user!r}) is not a bcrypt hash; the registry would ignore it")
        entries[user] = hashed
    return entries


def render(entries: dict[str, str]) -> bytes:
    return "".join(f"{u}:{h}\n" for u, h in entries.items()).encode("utf-8")


def _bcrypt():
    from passlib.hash import bcrypt  # imported when needed: only users.* and setup hash or verify

    return bcrypt


def hash_password(password: str) -> str:
    return _bcrypt().using(rounds=ROUNDS, ident="2y").hash(v.password(password))


def verify(entries: dict[str, str], user: str, password: str) -> bool:
    hashed = entries.get(user)
    return bool(hashed) and _bcrypt().verify(password, hashed)


def set_password(entries: dict[str, str], user: str, password: str) -> tuple[dict[str, str], bool]:
    """Return (new entries, changed). Unchanged when the password already verifies."""
    try:
        v.registry_user(user)
        v.password(password)
    except v.Invalid as exc:
        raise HtpasswdError(str(exc)) from None
    if verify(entries, user, password):
        return dict(entries), False
    return {**entries, user: hash_password(password)}, True


def remove(entries: dict[str, str], user: str) -> tuple[dict[str, str], bool]:
    if user not in entries:
        return dict(entries), False
    return {u: h for u, h in entries.items() if u != user}, True
