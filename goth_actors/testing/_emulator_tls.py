"""Certificates for the emulator's mutual-TLS listener, generated per emulator.

They are never stored beyond its own temporary directory.

`Certificates` makes a certificate authority, a server certificate for 127.0.0.1 and
``localhost``, and signs client (workload) certificates on demand; `Certificates.context`
is the server's TLS context, which requires a client certificate signed by that authority.
Clients trust the server through `Certificates.ca_file` (``REQUESTS_CA_BUNDLE``).
EC P-256 keys: generated in a millisecond, where RSA takes a hundred.
"""

from __future__ import annotations

import datetime
import ipaddress
import shutil
import ssl
import tempfile
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["Certificates"]

_VALIDITY = datetime.timedelta(days=2)


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "goth_actors GoogleEmulator"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


class Certificates:
    """A per-emulator certificate authority, its server certificate, and client certificates."""

    def __init__(self) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="goth-emulator-tls-"))
        now = datetime.datetime.now(datetime.UTC)
        self._ca_key = ec.generate_private_key(ec.SECP256R1())
        self._ca = (
            x509.CertificateBuilder()
            .subject_name(_name("GoogleEmulator test CA"))
            .issuer_name(_name("GoogleEmulator test CA"))
            .public_key(self._ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + _VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(self._ca_key, hashes.SHA256())
        )
        self.ca_file = self.directory / "ca.pem"
        self.ca_file.write_bytes(self._ca.public_bytes(serialization.Encoding.PEM))
        sans = [
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            x509.IPAddress(ipaddress.ip_address("::1")),
            x509.DNSName("localhost"),
        ]
        server_cert, server_key = self._issue("127.0.0.1", ExtendedKeyUsageOID.SERVER_AUTH, sans)
        self._server_files = self.write(self.directory, "server", server_cert, server_key)

    def _issue(
        self,
        common_name: str,
        usage: x509.ObjectIdentifier,
        sans: list[x509.GeneralName] | None = None,
    ) -> tuple[bytes, bytes]:
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name))
            .issuer_name(self._ca.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + _VALIDITY)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        )
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        certificate = builder.sign(self._ca_key, hashes.SHA256())
        return certificate.public_bytes(serialization.Encoding.PEM), _pem(key)

    def client(self, common_name: str) -> tuple[bytes, bytes]:
        """A new client (workload) certificate and its key, as PEM."""
        return self._issue(common_name, ExtendedKeyUsageOID.CLIENT_AUTH)

    @property
    def ca_pem(self) -> bytes:
        """The authority's certificate, as PEM (what a trust chain file holds)."""
        return self._ca.public_bytes(serialization.Encoding.PEM)

    @staticmethod
    def write(directory: Path, stem: str, certificate: bytes, key: bytes) -> tuple[Path, Path]:
        """Writes ``{stem}.pem`` and ``{stem}-key.pem`` (0600) into ``directory``."""
        directory.mkdir(parents=True, exist_ok=True)
        cert_path, key_path = directory / f"{stem}.pem", directory / f"{stem}-key.pem"
        cert_path.write_bytes(certificate)
        key_path.touch(mode=0o600)
        key_path.write_bytes(key)
        return cert_path, key_path

    def context(self) -> ssl.SSLContext:
        """The server's TLS context: its certificate, and a client certificate required."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(*self._server_files)
        context.load_verify_locations(cafile=str(self.ca_file))
        context.verify_mode = ssl.CERT_REQUIRED
        return context

    def remove(self) -> None:
        """Deletes the temporary directory (the CA and server files)."""
        shutil.rmtree(self.directory, ignore_errors=True)
