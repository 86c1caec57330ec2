"""A throwaway certificate authority for the local broker's TLS listener (``--tls``).

Managed Kafka services require TLS, and the engine's ``LIFECYCLE_BROKER_SSL_*``
settings are only known to work once they have met a TLS listener: so the local
broker can speak TLS with certificates nobody buys or installs. A fresh CA
signs one certificate for the loopback host (``127.0.0.1`` and ``localhost``),
and clients trust that CA through ``LIFECYCLE_BROKER_SSL_CAFILE``. The CA's key
is never written: a broker certificate that is missing or about to expire is
replaced together with a new CA at the same path. For development and tests
only; a real cluster's certificates come from its operator.

Making certificates is pure (``new_ca``, ``issue``); ``ensure_certificates`` and
``write_keystore`` are the file side the launcher calls on every start.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = [
    "LOOPBACK_NAMES",
    "CertificateAuthority",
    "TlsFiles",
    "ensure_certificates",
    "issue",
    "new_ca",
    "write_keystore",
]

LOOPBACK_NAMES: Final = ("127.0.0.1", "localhost")
"""What the broker certificate names: the launcher listens on 127.0.0.1 only."""

VALIDITY: Final = timedelta(days=365)
RENEW_BEFORE: Final = timedelta(days=1)
"""A broker certificate this close to expiry is replaced at the next start."""

_CLOCK_SKEW: Final = timedelta(minutes=5)


@dataclass(frozen=True)
class CertificateAuthority:
    """A CA key and its self-signed certificate, held in memory."""

    key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate

    def pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)


@dataclass(frozen=True)
class TlsFiles:
    """Where one broker home keeps its TLS material.

    ``ca`` is public (clients need it); ``key`` is the broker's private key,
    readable by its owner only; ``chain`` is the broker certificate followed by
    the CA's; ``keystore`` is the PKCS12 form Kafka reads, rewritten with a
    fresh password on every start.
    """

    directory: Path

    @property
    def ca(self) -> Path:
        return self.directory / "ca.pem"

    @property
    def key(self) -> Path:
        return self.directory / "broker-key.pem"

    @property
    def chain(self) -> Path:
        return self.directory / "broker.pem"

    @property
    def keystore(self) -> Path:
        return self.directory / "broker.p12"


def new_ca(
    common_name: str = "lifecycle local broker CA", now: datetime | None = None
) -> CertificateAuthority:
    """A fresh CA that may sign leaf certificates only (path length 0)."""
    now = now or datetime.now(UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    public = key.public_key()
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _CLOCK_SKEW)
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    return CertificateAuthority(key, certificate)


def issue(
    ca: CertificateAuthority, names: tuple[str, ...] = LOOPBACK_NAMES, now: datetime | None = None
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A server key and certificate for ``names`` (IP addresses or DNS names), signed by ``ca``.

    Clients check the address they dial against the subject alternative names,
    so each name goes there as an IP address or a DNS name, whichever it is.
    """
    now = now or datetime.now(UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    public = key.public_key()
    alternatives: list[x509.GeneralName] = []
    for host in names:
        try:
            alternatives.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            alternatives.append(x509.DNSName(host))
    ca_key_id = ca.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca.certificate.subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _CLOCK_SKEW)
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_usage(cert_sign=False), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(x509.SubjectAlternativeName(alternatives), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_key_id.value),
            critical=False,
        )
        .sign(ca.key, hashes.SHA256())
    )
    return key, certificate


def _usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def ensure_certificates(files: TlsFiles, now: datetime | None = None) -> bool:
    """Make the CA and broker certificate unless a usable pair is already there.

    Kept across starts, so a client's ``LIFECYCLE_BROKER_SSL_CAFILE`` stays valid
    for as long as the broker's home does. Returns whether new ones were made.
    """
    now = now or datetime.now(UTC)
    if _usable(files, now):
        return False
    files.directory.mkdir(parents=True, exist_ok=True)
    ca = new_ca(now=now)
    key, certificate = issue(ca, now=now)
    _write(
        files.key,
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
        private=True,
    )
    _write(files.chain, certificate.public_bytes(serialization.Encoding.PEM) + ca.pem())
    _write(files.ca, ca.pem())  # last: its presence says the set is complete
    return True


def _usable(files: TlsFiles, now: datetime) -> bool:
    try:
        chain = x509.load_pem_x509_certificates(files.chain.read_bytes())
        ca = x509.load_pem_x509_certificate(files.ca.read_bytes())
        serialization.load_pem_private_key(files.key.read_bytes(), password=None)
    except (OSError, ValueError):
        return False
    return chain[0].issuer == ca.subject and chain[0].not_valid_after_utc - RENEW_BEFORE > now


def write_keystore(files: TlsFiles) -> str:
    """Write the broker's key and chain as a PKCS12 keystore; returns its new password.

    Kafka's file-based PEM keystore insists on an encrypted key, PKCS12 is what
    every Java reads, and a password made per start never has to be stored
    anywhere but the (owner-only) server.properties that uses it.
    """
    password = secrets.token_urlsafe(24)
    key = serialization.load_pem_private_key(files.key.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        msg = f"{files.key} does not hold an EC key"
        raise TypeError(msg)
    leaf, *authorities = x509.load_pem_x509_certificates(files.chain.read_bytes())
    data = pkcs12.serialize_key_and_certificates(
        b"broker",
        key,
        leaf,
        authorities,
        serialization.BestAvailableEncryption(password.encode()),
    )
    _write(files.keystore, data, private=True)
    return password


def _write(path: Path, data: bytes, *, private: bool = False) -> None:
    """Replace ``path`` whole (a reader never sees half a file); keys are owner-only."""
    staged = path.with_name(f".{path.name}.tmp")
    mode = 0o600 if private else 0o644
    fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    os.fchmod(fd, mode)  # a leftover file keeps its mode through O_CREAT
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    staged.replace(path)
