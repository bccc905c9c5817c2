"""PKI with `cryptography`: a local CA, the registry's server certificate, and their checks.

Pure: functions take and return PEM bytes. One certificate builder serves the CA, the
CA-signed and the self-signed server certificate. Subject alternative names are typed
from the identity (an IP address becomes an IP SAN, anything else a DNS SAN), as trustme
does; a CN-only certificate is never made (docker rejects them).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

KEY_TYPES = ("rsa4096", "rsa2048", "ecdsa-p256")
CA_DAYS = 3650


@dataclass(frozen=True)
class CertInfo:
    subject: str
    issuer: str
    sans: tuple[str, ...]
    not_before: dt.datetime
    not_after: dt.datetime
    sha256: str  # fingerprint of the DER certificate, hex
    is_ca: bool
    key_type: str

    def days_left(self, now: dt.datetime) -> int:
        return (self.not_after - now).days


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def new_key(key_type: str):
    if key_type == "ecdsa-p256":
        return ec.generate_private_key(ec.SECP256R1())
    if key_type in ("rsa4096", "rsa2048"):
        return rsa.generate_private_key(public_exponent=65537, key_size=int(key_type[3:]))
    raise ValueError(f"unknown key type {key_type!r}; use one of {', '.join(KEY_TYPES)}")


def key_type_of(public_key) -> str:
    if isinstance(public_key, ec.EllipticCurvePublicKey) and public_key.curve.name == "secp256r1":
        return "ecdsa-p256"
    if isinstance(public_key, rsa.RSAPublicKey):
        return f"rsa{public_key.key_size}"
    return type(public_key).__name__


def key_pem(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def load_key(pem: bytes):
    # Our own 0600 state files: skipping RSA's consistency proof saves ~0.3 s per rsa4096 load;
    # key_matches() still compares the public key with the certificate's.
    return serialization.load_pem_private_key(pem, password=None, unsafe_skip_rsa_key_validation=True)


def load_cert(pem: bytes) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem)


def san_entry(identity: str) -> x509.GeneralName:
    """An IP SAN when the identity parses as an address, else a DNS SAN."""
    try:
        return x509.IPAddress(ipaddress.ip_address(identity))
    except ValueError:
        return x509.DNSName(identity)


def _build(subject_cn: str, key, *, issuer_cert=None, issuer_key=None, days: int, is_ca: bool,
           sans: list[str], now: dt.datetime) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject_cn)])
    issuer_name = issuer_cert.subject if issuer_cert is not None else name
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=0 if is_ca else None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    signer = issuer_key if issuer_key is not None else key
    builder = builder.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()),
                                    critical=False)
    if is_ca:
        builder = builder.add_extension(
            x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                          data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                          encipher_only=False, decipher_only=False), critical=True)
    else:
        rsa_key = isinstance(key, rsa.RSAPrivateKey)
        builder = (
            builder.add_extension(x509.SubjectAlternativeName([san_entry(s) for s in sans]), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(
                x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=rsa_key,
                              data_encipherment=False, key_agreement=False, key_cert_sign=False,
                              crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        )
    return builder.sign(signer, hashes.SHA256())


def make_ca(common_name: str, key_type: str, now: dt.datetime | None = None,
            days: int = CA_DAYS) -> tuple[bytes, bytes]:
    """A CA key and certificate (BasicConstraints ca=True, keyCertSign). Returns (key_pem, cert_pem)."""
    key = new_key(key_type)
    cert = _build(common_name, key, days=days, is_ca=True, sans=[], now=now or utcnow())
    return key_pem(key), cert.public_bytes(serialization.Encoding.PEM)


def make_server_cert(names: list[str], key_type: str, days: int, *, ca: tuple[bytes, bytes] | None = None,
                     now: dt.datetime | None = None) -> tuple[bytes, bytes]:
    """The registry's server key and certificate for `names` (the first is the CN).

    With `ca` = (ca_key_pem, ca_cert_pem) the CA signs it; without, it is self-signed.
    Returns (key_pem, cert_pem).
    """
    if not names:
        raise ValueError("a server certificate needs at least one name")
    key = new_key(key_type)
    issuer_cert = issuer_key = None
    if ca is not None:
        issuer_key, issuer_cert = load_key(ca[0]), load_cert(ca[1])
    cert = _build(names[0], key, issuer_cert=issuer_cert, issuer_key=issuer_key, days=days, is_ca=False,
                  sans=list(dict.fromkeys(names)), now=now or utcnow())
    return key_pem(key), cert.public_bytes(serialization.Encoding.PEM)


def inspect(cert_pem: bytes) -> CertInfo:
    cert = load_cert(cert_pem)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        sans = tuple(str(n.value) for n in san)
    except x509.ExtensionNotFound:
        sans = ()
    try:
        is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        is_ca = False
    return CertInfo(
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        sans=sans,
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        sha256=hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest(),
        is_ca=is_ca,
        key_type=key_type_of(cert.public_key()),
    )


def key_matches(cert_pem: bytes, key_pem_bytes: bytes) -> bool:
    pub = lambda k: k.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return pub(load_cert(cert_pem).public_key()) == pub(load_key(key_pem_bytes).public_key())


def signed_by(cert_pem: bytes, ca_cert_pem: bytes) -> bool:
    try:
        load_cert(cert_pem).verify_directly_issued_by(load_cert(ca_cert_pem))
        return True
    except (ValueError, TypeError, Exception):  # InvalidSignature and mismatched issuer names
        return False


def renewal_reason(cert_pem: bytes, key_pem_bytes: bytes, *, names: list[str], key_type: str,
                   renew_before_days: int, now: dt.datetime, ca_cert_pem: bytes | None) -> str | None:
    """Why an existing server certificate must be re-issued, or None when it can be kept."""
    try:
        info = inspect(cert_pem)
        if not key_matches(cert_pem, key_pem_bytes):
            return "its key does not match the certificate"
    except ValueError as exc:
        return f"it cannot be read ({exc})"
    if set(info.sans) != set(names):
        return f"its names {sorted(info.sans)} differ from the settings {sorted(set(names))}"
    if info.key_type != key_type:
        return f"its key is {info.key_type}, the settings ask for {key_type}"
    if info.not_after - now <= dt.timedelta(days=renew_before_days):
        return f"it expires {info.not_after:%Y-%m-%d}, within renew_before_days={renew_before_days}"
    if ca_cert_pem is not None and not signed_by(cert_pem, ca_cert_pem):
        return "it is not signed by the current CA"
    if ca_cert_pem is None and info.issuer != info.subject:
        return "it is CA-signed but cert.mode is self-signed"
    return None
