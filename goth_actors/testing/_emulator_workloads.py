"""Workload identity federation on the emulator: pools and their ``external_account`` files.

One for each kind of subject token (a file or URL, AWS, an executable, an X.509 certificate).

`EmulatorWorkloads` is the part of `GoogleEmulator` that
makes them. A mixin: the emulator holds the state, and starts its mutual-TLS listener the
first time an X.509 workload needs it.
"""

from __future__ import annotations

import json
import math
import os
import shlex
import sys
from pathlib import Path
from typing import Any, Literal

from goth_actors.testing._emulator_aws import AWS_TOKEN_TYPE, FakeAws
from goth_actors.testing._emulator_federation import (
    DEFAULT_SUBJECT,
    JWT_TOKEN_TYPE,
    MTLS_TOKEN_TYPE,
    STS_PATH,
    SUBJECT_PATH,
    FakeFederation,
)
from goth_actors.testing._emulator_google import FakeGoogle
from goth_actors.testing._emulator_tls import Certificates

__all__ = ["EmulatorWorkloads"]

_VERIFICATION_URL = "https://sts.{region}.amazonaws.com?Action=GetCallerIdentity&Version=2011-06-15"
_EXECUTABLE = """\
import json, os, sys, time, urllib.request

# Written by goth_actors' GoogleEmulator: fetches a subject token from the emulator and
# prints it in the executable response format (version 1). Records what it was given.
with open({environment!r}, "w") as record:
    json.dump({{k: v for k, v in os.environ.items() if k.startswith("GOOGLE_EXTERNAL_")}}, record)
request = urllib.request.Request({url!r}, headers={{"Authorization": {authorization!r}}})
token = urllib.request.urlopen(request, timeout=10).read().decode()
print(json.dumps({{
    "version": 1,
    "success": True,
    "token_type": "urn:ietf:params:oauth:token-type:jwt",
    "id_token": token,
    "expiration_time": int(time.time()) + 3600,
}}))
"""


class EmulatorWorkloads:
    """Workload identity pools and their credentials (a mixin of ``GoogleEmulator``)."""

    _google: FakeGoogle
    _federation: FakeFederation
    _aws: FakeAws

    @property
    def url(self) -> str:
        raise NotImplementedError  # the emulator's

    @property
    def sts_url(self) -> str:
        raise NotImplementedError  # the emulator's

    @property
    def iam_url(self) -> str:
        raise NotImplementedError  # the emulator's

    def _mtls(self) -> tuple[str, Certificates]:
        raise NotImplementedError  # the emulator's: its mTLS listener, started on demand

    def _impersonating(
        self, credentials: dict[str, Any], service_account: str | None
    ) -> dict[str, Any]:
        if service_account is not None:
            self._google.ensure_account(service_account)
            credentials["service_account_impersonation_url"] = (
                f"{self.iam_url}/v1/projects/-/serviceAccounts/{service_account}"
                ":generateAccessToken"
            )
        return credentials

    def workload_identity(
        self,
        *,
        file: str | os.PathLike[str] | None = None,
        format: Literal["text", "json"] = "text",
        service_account: str | None = None,
        subject: str = DEFAULT_SUBJECT,
        subject_token_type: str = JWT_TOKEN_TYPE,
    ) -> dict[str, Any]:
        """Creates a workload identity pool; returns ``external_account`` credentials for it.

        The credentials point at [`sts_url`][goth_actors.testing.GoogleEmulator.sts_url]. Their
        ``credential_source`` is ``file`` when given (a fresh subject token is written there now;
        write more with [`subject_token`][goth_actors.testing.GoogleEmulator.subject_token]), else
        the pool's subject-token URL on the emulator, which, like a CI system's OIDC endpoint, needs
        the ``Authorization`` header in the credentials and mints a fresh subject token per request.
        STS checks the grant type, requested token type, ``audience`` (the pool's),
        ``subject_token_type`` and that the subject token was minted here for this pool and is
        unexpired. Its tokens show in tokeninfo with the email
        ``principal://.../subject/{subject}``; [`revoke`][goth_actors.testing.GoogleEmulator.revoke]
        of the ``audience`` disables the pool.

        Args:
            file: Where the subject token lives; ``None`` for the URL source.
            format: ``"text"``, or ``"json"`` (the token in the field ``"value"``).
            service_account: Impersonate this service account after STS (it is created if
                the emulator has not issued it): the credentials get a
                ``service_account_impersonation_url`` on the emulator.
            subject: The subject (``sub``) of the pool's subject tokens.
            subject_token_type: The ``subject_token_type`` STS will insist on.

        Examples:
            >>> from goth_actors.testing import GoogleEmulator
            >>> with GoogleEmulator() as emu:
            ...     creds = emu.workload_identity(format="json")
            ...     creds["credential_source"]["format"]
            {'type': 'json', 'subject_token_field_name': 'value'}
        """
        if format not in ("text", "json"):
            raise ValueError(f"format must be 'text' or 'json', not {format!r}")
        pool = self._federation.create_pool(
            subject_token_type=subject_token_type, format=format, subject=subject
        )
        token_format: dict[str, str] = {"type": format}
        if format == "json":
            token_format["subject_token_field_name"] = "value"
        if file is not None:
            source: dict[str, Any] = {"file": os.fspath(file), "format": token_format}
            self._write_subject_token(Path(file), pool.audience, format)
        else:
            source = {
                "url": f"{self.url}{SUBJECT_PATH}{pool.number}",
                "headers": {"Authorization": f"Bearer {pool.request_token}"},
                "format": token_format,
            }
        credentials: dict[str, Any] = {
            "type": "external_account",
            "audience": pool.audience,
            "subject_token_type": subject_token_type,
            "token_url": self.sts_url,
            "credential_source": source,
            "universe_domain": self._google.universe_domain,
        }
        return self._impersonating(credentials, service_account)

    def subject_token(
        self, audience: str, *, subject: str | None = None, lifetime: float = 3600.0
    ) -> str:
        """Mints a subject token (a signed JWT) that STS accepts for ``audience``.

        Args:
            audience: The pool's ``audience``, from
                [`workload_identity`][goth_actors.testing.GoogleEmulator.workload_identity]'s
                credentials.
            subject: Its ``sub``. Defaults to the pool's ``subject``.
            lifetime: Seconds until STS refuses it ("The subject token has expired.").

        Examples:
            >>> from goth_actors.testing import GoogleEmulator
            >>> with GoogleEmulator() as emu:
            ...     creds = emu.workload_identity()
            ...     token = emu.subject_token(creds["audience"])
        """
        if isinstance(lifetime, bool) or not (math.isfinite(lifetime) and lifetime > 0):
            raise ValueError(
                f"lifetime must be a positive, finite number of seconds, not {lifetime!r}"
            )
        return self._federation.mint_subject_token(audience, subject, lifetime)

    def _write_subject_token(self, path: Path, audience: str, format: str) -> None:
        token = self.subject_token(audience)
        path.write_text(json.dumps({"value": token}) if format == "json" else token)

    def aws_workload_identity(
        self, *, imdsv2: bool = True, service_account: str | None = None
    ) -> dict[str, Any]:
        """Creates a pool for AWS workloads; returns its ``external_account`` (``aws1``) file.

        Its ``credential_source`` reads the emulator's EC2 instance metadata service (under
        [`url`][goth_actors.testing.GoogleEmulator.url] + ``/latest/``): the region from the
        availability zone, the instance role's temporary credentials, and, with ``imdsv2``, an
        IMDSv2 session token first (the metadata service then refuses reads without one: see
        [`aws_imdsv2_required`][goth_actors.testing.GoogleEmulator.aws_imdsv2_required]). STS
        decodes the subject token (the serialised signed ``GetCallerIdentity`` request), checks that
        it targets this pool (``x-goog-cloud-target-resource``), that its time is within 15 minutes,
        and recomputes its SigV4 signature with the key's secret, as AWS would. Keys from
        [`aws_access_key`][goth_actors.testing.GoogleEmulator.aws_access_key] work through
        ``AWS_ACCESS_KEY_ID`` too. Tokens show in tokeninfo with the email
        ``principal://.../subject/{aws arn}``.

        Args:
            imdsv2: Whether the file names an ``imdsv2_session_token_url``. Default ``True``.
            service_account: Impersonate this service account after STS.

        Examples:
            >>> from goth_actors.testing import GoogleEmulator
            >>> with GoogleEmulator() as emu:
            ...     emu.aws_workload_identity()["credential_source"]["environment_id"]
            'aws1'
        """
        pool = self._federation.create_pool(
            subject_token_type=AWS_TOKEN_TYPE, format="text", subject=""
        )
        source = {
            "environment_id": "aws1",
            "region_url": f"{self.url}/latest/meta-data/placement/availability-zone",
            "url": f"{self.url}/latest/meta-data/iam/security-credentials",
            "regional_cred_verification_url": _VERIFICATION_URL,
        }
        if imdsv2:
            source["imdsv2_session_token_url"] = f"{self.url}/latest/api/token"
        credentials: dict[str, Any] = {
            "type": "external_account",
            "audience": pool.audience,
            "subject_token_type": AWS_TOKEN_TYPE,
            "token_url": self.sts_url,
            "credential_source": source,
            "universe_domain": self._google.universe_domain,
        }
        return self._impersonating(credentials, service_account)

    def aws_access_key(self) -> dict[str, str]:
        """Issues a long-term AWS access key; returns it as the environment variables AWS reads.

        ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY`` and ``AWS_REGION`` (the emulator's
        [`aws_region`][goth_actors.testing.GoogleEmulator.aws_region]): with them an AWS source
        needs no metadata service at all.

        Examples:
            ```python
            monkeypatch.setattr(os, "environ", {**os.environ, **emu.aws_access_key()})
            ```
        """
        key = self._aws.access_key()
        return {
            "AWS_ACCESS_KEY_ID": key.access_key_id,
            "AWS_SECRET_ACCESS_KEY": key.secret_access_key,
            "AWS_REGION": self._aws.region,
        }

    def executable_workload_identity(
        self,
        directory: str | os.PathLike[str],
        *,
        output_file: bool = False,
        service_account: str | None = None,
    ) -> dict[str, Any]:
        """Creates a pool whose subject tokens a program prints; returns its file.

        Writes ``directory/get-subject-token.py``, a Python program that fetches a fresh
        subject token from the pool's subject-token URL on the emulator and prints it in the
        executable response format (version 1, with an ``expiration_time`` an hour ahead),
        and records the ``GOOGLE_EXTERNAL_ACCOUNT_*`` environment it was run with in
        ``directory/environment.json``. The file's ``credential_source.executable.command``
        runs it with this Python (allowed only with
        ``GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES=1``).

        Args:
            directory: Where the program (and its record) are written.
            output_file: Whether the file names an ``output_file``
                (``directory/subject-token-cache.json``). Default ``False``.
            service_account: Impersonate this service account after STS.

        Examples:
            ```python
            creds = emu.executable_workload_identity(tmp_path)
            ```
        """
        folder = Path(directory)
        folder.mkdir(parents=True, exist_ok=True)
        credentials = self.workload_identity(service_account=service_account)
        subject = credentials.pop("credential_source")
        program = folder / "get-subject-token.py"
        program.write_text(
            _EXECUTABLE.format(
                environment=str(folder / "environment.json"),
                url=subject["url"],
                authorization=subject["headers"]["Authorization"],
            )
        )
        executable: dict[str, Any] = {
            "command": f"{shlex.quote(sys.executable)} {shlex.quote(str(program))}",
            "timeout_millis": 10_000,
        }
        if output_file:
            executable["output_file"] = str(folder / "subject-token-cache.json")
        credentials["credential_source"] = {"executable": executable}
        return credentials

    def x509_workload_identity(
        self,
        directory: str | os.PathLike[str],
        *,
        service_account: str | None = None,
        trust_chain: bool = False,
    ) -> dict[str, Any]:
        """Creates a pool of X.509 workloads; writes one's certificate; returns its file.

        Starts the emulator's mutual-TLS listener (once; see
        [`mtls_url`][goth_actors.testing.GoogleEmulator.mtls_url] and
        [`ca_file`][goth_actors.testing.GoogleEmulator.ca_file]), writes a client certificate signed
        by the emulator's authority, its key (0600) and a ``certificate_config.json`` naming them
        into ``directory``, and returns ``external_account`` credentials with ``subject_token_type``
        ``urn:ietf:params:oauth:token-type:mtls``, the ``token_url`` on the mTLS listener and
        ``credential_source.certificate.certificate_config_location``. STS there checks that the
        subject token's leaf is the certificate the client presented. Clients must trust
        [`ca_file`][goth_actors.testing.GoogleEmulator.ca_file] (``REQUESTS_CA_BUNDLE``).

        Args:
            directory: Where the certificate, key and configuration are written.
            service_account: Impersonate this service account after STS (through the mTLS
                listener too).
            trust_chain: Also write ``trust_chain.pem`` (the authority) and name it.

        Examples:
            ```python
            creds = emu.x509_workload_identity(tmp_path)
            ```
        """
        base, certificates = self._mtls()
        folder = Path(directory)
        pool = self._federation.create_pool(
            subject_token_type=MTLS_TOKEN_TYPE, format="text", subject=""
        )
        common_name = f"workload-{pool.number}.emulator.test"
        cert_path, key_path = certificates.write(
            folder, "workload", *certificates.client(common_name)
        )
        config = folder / "certificate_config.json"
        config.write_text(
            json.dumps(
                {
                    "cert_configs": {
                        "workload": {"cert_path": str(cert_path), "key_path": str(key_path)}
                    }
                }
            )
        )
        source: dict[str, Any] = {"certificate_config_location": str(config)}
        if trust_chain:
            chain = folder / "trust_chain.pem"
            chain.write_bytes(certificates.ca_pem)
            source["trust_chain_path"] = str(chain)
        credentials: dict[str, Any] = {
            "type": "external_account",
            "audience": pool.audience,
            "subject_token_type": MTLS_TOKEN_TYPE,
            "token_url": f"{base}{STS_PATH}",
            "credential_source": {"certificate": source},
            "universe_domain": self._google.universe_domain,
        }
        if service_account is not None:
            self._google.ensure_account(service_account)
            credentials["service_account_impersonation_url"] = (
                f"{base}/v1/projects/-/serviceAccounts/{service_account}:generateAccessToken"
            )
        return credentials
