"""Value checks shared by settings, CLI arguments and the htpasswd core.

Each check returns the normalised value or raises `Invalid` with the text
"what is accepted", so a caller can build one line: key, value, what is accepted.
"""
from __future__ import annotations

import ipaddress
import posixpath
import re


class Invalid(ValueError):
    """A value failed a check; the message says what would be accepted."""


_LABEL = r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)"
_HOSTNAME_RE = re.compile(rf"^{_LABEL}(\.{_LABEL})*\.?$")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_UNIX_USER_RE = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
_REGISTRY_USER_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
_IMAGE_RE = re.compile(
    r"^(?:[A-Za-z0-9.-]+(?::[0-9]{1,5})?/)?"  # optional registry host[:port]/
    r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"  # first path component
    r"(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"  # more path components
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?"  # :tag
    r"(?:@sha256:[0-9a-f]{64})?$"  # @digest
)
MAX_PASSWORD_BYTES = 72  # bcrypt only reads the first 72 bytes


def hostname(value: object) -> str:
    """A DNS name per RFC 1123 (letters, digits, '-', dots between labels)."""
    if not isinstance(value, str) or len(value) > 253 or not _HOSTNAME_RE.match(value):
        raise Invalid("a DNS host name (RFC 1123: letters, digits, '-', labels joined by '.')")
    if value.replace(".", "").isdigit():
        raise Invalid("a DNS host name, not a bare number")
    return value.rstrip(".").lower()


def ip_address(value: object) -> str:
    try:
        return str(ipaddress.ip_address(value))  # type: ignore[arg-type]
    except ValueError:
        raise Invalid("an IPv4 or IPv6 address") from None


def host_or_ip(value: object) -> str:
    """An IP address, or else a DNS host name."""
    if isinstance(value, str):
        try:
            return ip_address(value)
        except Invalid:
            pass
    try:
        return hostname(value)
    except Invalid:
        raise Invalid("an IP address or a DNS host name (RFC 1123)") from None


def port(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise Invalid("an integer from 1 to 65535")
    return value


def positive_int(value: object, maximum: int = 1_000_000) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= maximum:
        raise Invalid(f"an integer from 1 to {maximum}")
    return value


def non_negative_int(value: object, maximum: int = 1_000_000) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= maximum:
        raise Invalid(f"an integer from 0 to {maximum}")
    return value


def boolean(value: object) -> bool:
    if not isinstance(value, bool):
        raise Invalid("true or false")
    return value


def name(value: object) -> str:
    """A plain name: letters, digits, '_', '.', '-'; starting with a letter or digit."""
    if not isinstance(value, str) or not _NAME_RE.match(value):
        raise Invalid("a name of letters, digits, '_', '.', '-' (starting with a letter or digit, at most 63)")
    return value


def unix_user(value: object) -> str:
    if not isinstance(value, str) or not _UNIX_USER_RE.match(value):
        raise Invalid("a Unix user name (lower-case letters, digits, '_', '-'; at most 32)")
    return value


def registry_user(value: object) -> str:
    """A registry (htpasswd) user name: no ':' (the field separator), no spaces or shell characters."""
    if not isinstance(value, str) or not _REGISTRY_USER_RE.match(value):
        raise Invalid("a user name of letters, digits, '_', '.', '@', '-' (no ':' or spaces; at most 64)")
    return value


def password(value: object) -> str:
    if not isinstance(value, str) or value == "":
        raise Invalid("a non-empty password")
    if len(value.encode("utf-8")) > MAX_PASSWORD_BYTES:
        raise Invalid(f"a password of at most {MAX_PASSWORD_BYTES} bytes (bcrypt ignores the rest)")
    if any(c in value for c in "\r\n\x00"):
        raise Invalid("a password without newlines or NUL characters")
    return value


def absolute_path(value: object) -> str:
    """An absolute POSIX path without '..' components or shell-hostile characters."""
    if not isinstance(value, str) or not value.startswith("/"):
        raise Invalid("an absolute path (starting with '/')")
    parts = value.split("/")
    if ".." in parts or "." in parts:
        raise Invalid("an absolute path without '.' or '..' components")
    if any(ord(c) < 32 or c in "\"'`$;&|<>*?\\" for c in value):
        raise Invalid("a path without quotes, control or shell characters")
    return posixpath.normpath(value)


def jump(value: object) -> str:
    """A bastion as OpenSSH's ProxyJump writes one: [user@]host[:port] (IPv6 as [addr]:port)."""
    if not isinstance(value, str):
        raise Invalid("[user@]host[:port] of a bastion")
    parse_jump(value)
    return value


def parse_jump(value: str) -> tuple[str | None, str, int]:
    """(user or None, host, port) of `[user@]host[:port]`; `Invalid` when it is not one."""
    accepted = "[user@]host[:port] of a bastion (e.g. admin@bastion.example:22, or [fd00::1]:22)"
    user, sep, rest = value.rpartition("@")
    if sep and not _UNIX_USER_RE.match(user):
        raise Invalid(accepted)
    if rest.startswith("["):
        host, _, tail = rest[1:].partition("]")
        port_text = tail[1:] if tail.startswith(":") else ("" if not tail else None)
    elif rest.count(":") == 1:
        host, port_text = rest.split(":")
    else:
        host, port_text = rest, ""
    if port_text is None:
        raise Invalid(accepted)
    try:
        host = host_or_ip(host)
        number = port(int(port_text)) if port_text else 22
    except (Invalid, ValueError):
        raise Invalid(accepted) from None
    return (user or None), host, number


def http_url(value: object) -> str:
    """http[s]://HOST[:PORT] with an optional path: an S3 endpoint (IPv6 as [addr])."""
    from urllib.parse import urlsplit

    accepted = "an http:// or https:// URL such as http://10.0.0.5:7480 (no user, query or quotes)"
    if not isinstance(value, str) or any(ord(c) < 33 or c in "\"'`$;&|<>\\" for c in value):
        raise Invalid(accepted)
    try:
        u = urlsplit(value)
        u.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise Invalid(accepted) from None
    if u.scheme not in ("http", "https") or not u.hostname or u.username or u.query or u.fragment:
        raise Invalid(accepted)
    host_or_ip(u.hostname)
    return value.rstrip("/")


_BUCKET_RE = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


def bucket_name(value: object) -> str:
    """An S3 bucket name as AWS and Ceph accept it for path-style access."""
    if not isinstance(value, str) or not _BUCKET_RE.fullmatch(value) or ".." in value:
        raise Invalid("an S3 bucket name: 3 to 63 lower-case letters, digits, '.', '-'")
    return value


def image_ref(value: object) -> str:
    if not isinstance(value, str) or len(value) > 255 or not _IMAGE_RE.match(value):
        raise Invalid("a Docker image reference such as registry:2 or host:5000/team/app:1.0")
    return value


def text(value: object, maximum: int = 200, forbid: str = '"') -> str:
    if not isinstance(value, str) or not value or len(value) > maximum:
        raise Invalid(f"a non-empty string of at most {maximum} characters")
    if any(ord(c) < 32 for c in value) or any(c in forbid for c in value):
        raise Invalid(f"text without control characters or {forbid!r}")
    return value


def one_of(value: object, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise Invalid("one of " + ", ".join(choices))
    return value  # type: ignore[return-value]


def sha256_hex(value: object, allow_empty: bool = True) -> str:
    if allow_empty and value == "":
        return ""
    if not isinstance(value, str) or not re.fullmatch(r"[0-9a-fA-F]{64}", value):
        raise Invalid("64 hexadecimal characters (a sha256 digest)")
    return value.lower()
