"""X.509 certificate-sourced workload identity: the workload proves itself with mutual TLS.

``credential_source.certificate`` names a certificate configuration file
(``certificate_config_location``, or ``use_default_certificate_config: true`` for
``GOOGLE_API_CERTIFICATE_CONFIG``, else gcloud's ``certificate_config.json``), read at each
fetch (certificates rotate) with the guards of every credential file:

    {"cert_configs": {"workload": {"cert_path": "...", "key_path": "..."}}}

The subject token is the JSON list of the base64 DER certificates: the leaf, then those of
``trust_chain_path`` (the leaf, if it heads that file, is not repeated; anywhere else it is an
error), as google-auth sends it. The STS exchange (and the impersonation after it) presents
the certificate: the exchange carries ``client_cert``, which the default HTTP client passes
to requests. The ``token_url`` is then STS's mTLS endpoint (``sts.mtls.googleapis.com``).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from goth_actors._base import ConfigError
from goth_actors._protocol.errors import TokenError
from goth_actors._protocol.files import FileProblem, read_json_object, read_text, shown_path
from goth_actors._protocol.gcloud import config_dir
from goth_actors._protocol.subject import Subject, SubjectContext
from goth_actors._protocol.token import Exchanger

__all__ = ["MTLS_TOKEN_TYPE", "CertificateSubjectSource", "certificate_source"]

MTLS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:mtls"
_KEYS = ("certificate_config_location", "use_default_certificate_config", "trust_chain_path")
_PEM_BLOCK = re.compile(r"-----BEGIN CERTIFICATE-----[A-Za-z0-9+/=\s]+?-----END CERTIFICATE-----")


def _failure(problem: str, *, retryable: bool = False) -> TokenError:
    return TokenError(problem, retryable=retryable)


@dataclass(frozen=True, slots=True)
class CertificateSubjectSource:
    """A validated certificate ``credential_source``."""

    config_location: str | None
    trust_chain_path: str | None

    def describe(self) -> str:
        return f"certificate {self.config_location or 'default certificate config'!r}"

    def read(self, exchanger: Exchanger, context: SubjectContext) -> Subject:  # noqa: ARG002
        """The certificate chain as the subject token, and the client certificate to present."""
        env = os.environ if exchanger.environ is None else exchanger.environ
        location = self.config_location or _default_config(env)
        config = read_json_object(location)
        if isinstance(config, FileProblem):
            what = f"the certificate configuration {shown_path(location)}"
            raise _failure(f"{what} {config.reason}", retryable=config.transient)
        workload = config.get("cert_configs")
        workload = workload.get("workload") if isinstance(workload, Mapping) else None
        cert_path = workload.get("cert_path") if isinstance(workload, Mapping) else None
        key_path = workload.get("key_path") if isinstance(workload, Mapping) else None
        if not isinstance(cert_path, str) or not isinstance(key_path, str):
            raise _failure(
                f"the certificate configuration {shown_path(location)} has no "
                "cert_configs.workload.cert_path and key_path"
            )
        leaf = _certificates(cert_path, "the workload certificate")[:1]
        chain = (
            _certificates(self.trust_chain_path, "the trust chain") if self.trust_chain_path else []
        )
        if not leaf:
            raise _failure(f"the workload certificate {shown_path(cert_path)} has no certificate")
        encoded = [leaf[0]]
        for index, certificate in enumerate(chain):
            if certificate == leaf[0]:
                if index == 0:
                    continue  # the chain may begin with the leaf itself
                raise _failure("the leaf certificate must be at the top of the trust chain file")
            encoded.append(certificate)
        return Subject(json.dumps(encoded), client_cert=(cert_path, key_path))


def _certificates(path: str, what: str) -> list[str]:
    """The base64 DER of each PEM certificate in the file at ``path``."""
    text = read_text(path)
    if isinstance(text, FileProblem):
        raise _failure(f"{what} {shown_path(path)} {text.reason}", retryable=text.transient)
    encoded: list[str] = []
    for block in _PEM_BLOCK.findall(text):
        certificate: x509.Certificate | None = None
        with contextlib.suppress(ValueError):  # refused below, with no chained original
            certificate = x509.load_pem_x509_certificate(block.encode("ascii"))
        if certificate is None:
            raise _failure(f"{what} {shown_path(path)} holds a certificate that does not load")
        encoded.append(base64.b64encode(certificate.public_bytes(Encoding.DER)).decode())
    return encoded


def _default_config(env: Mapping[str, str]) -> str:
    explicit = env.get("GOOGLE_API_CERTIFICATE_CONFIG")
    if explicit:
        return explicit
    return str(config_dir(env) / "certificate_config.json")


def certificate_source(value: object, name: str) -> CertificateSubjectSource:
    """Validates ``credential_source.certificate`` (``name`` is its field, for errors)."""
    if not isinstance(value, Mapping):
        raise ConfigError(name, f"must be a mapping, got {type(value).__name__}")
    unknown = sorted(str(k)[:40] for k in value if k not in _KEYS)
    if unknown:
        raise ConfigError(name, f"has unknown keys {unknown}; expected {', '.join(_KEYS)}")
    location = value.get("certificate_config_location")
    use_default = value.get("use_default_certificate_config")
    if use_default is not None and not isinstance(use_default, bool):
        raise ConfigError(f"{name}.use_default_certificate_config", "must be true or false")
    if location is not None and (not isinstance(location, str) or not location.strip()):
        raise ConfigError(f"{name}.certificate_config_location", "must be a non-empty path")
    if location and use_default:
        raise ConfigError(
            f"{name}.certificate_config_location",
            "cannot be given with use_default_certificate_config: true",
        )
    if not location and not use_default:
        raise ConfigError(
            name, "needs certificate_config_location or use_default_certificate_config: true"
        )
    chain = value.get("trust_chain_path")
    if chain is not None and (not isinstance(chain, str) or not chain.strip()):
        raise ConfigError(f"{name}.trust_chain_path", "must be a non-empty path")
    return CertificateSubjectSource(location, chain)
