"""The identities the emulator issues, and what it says of their tokens and signatures.

`EmulatorIdentities` is the part of `GoogleEmulator` that
makes credentials files for people and service accounts (``service_account``,
``authorized_user``, ``workforce_user``, ``impersonated_service_account``), revokes them, and
answers for their tokens (``token_info``) and signatures (``verify_signed_blob``). A mixin:
the emulator holds the state.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from goth_actors.testing._emulator_google import FakeGoogle
from goth_actors.testing._emulator_signing import verify_blob
from goth_actors.testing._emulator_workforce import (
    INTROSPECT_PATH,
    OAUTHTOKEN_PATH,
    FakeWorkforce,
)

__all__ = ["EmulatorIdentities"]


class EmulatorIdentities:
    """Credentials files for people and service accounts (a mixin of ``GoogleEmulator``)."""

    _google: FakeGoogle
    _workforce: FakeWorkforce

    @property
    def url(self) -> str:
        raise NotImplementedError  # the emulator's

    @property
    def iam_url(self) -> str:
        raise NotImplementedError  # the emulator's

    def service_account(self, email: str | None = None) -> dict[str, str]:
        """Issues a service-account key and returns its key file, as a dict.

        Each call makes a new key (new ``private_key_id``); without ``email`` it is for a new
        account. The RSA keys come from a small per-process pool, so two keys may share key
        material: to test a foreign signature, make your own key. ``token_uri`` points at the
        emulator.

        Args:
            email: The account's ``client_email``; an existing one gets a second key.
                Defaults to a new ``emulator-sa-N@{project_id}.iam.gserviceaccount.com``.

        Examples:
            >>> from goth_actors.testing import GoogleEmulator
            >>> from google.oauth2 import service_account
            >>> with GoogleEmulator() as emu:
            ...     creds = service_account.Credentials.from_service_account_info(
            ...         emu.service_account(), scopes=["https://www.googleapis.com/auth/pubsub"]
            ...     )
        """
        return self._google.service_account(email)

    def authorized_user(
        self,
        *,
        scopes: Iterable[str] | None = None,
        email: str | None = None,
        quota_project: str | None = None,
        rapt: bool = False,
    ) -> dict[str, str]:
        """Issues an OAuth client and a user's refresh token; returns them as an ADC dict.

        The dict has ``type: "authorized_user"``, ``client_id``, ``client_secret``,
        ``refresh_token`` and ``token_uri`` (pointing at the emulator). Note that
        google-auth's ``Credentials.from_authorized_user_info`` ignores ``token_uri`` (it
        always uses Google's); chain ``.with_token_uri(info["token_uri"])``.

        Args:
            scopes: What the user consented to; a refresh may ask for a subset. Defaults to
                ``openid``, ``userinfo.email`` and ``cloud-platform``.
            email: The user's email, reported by tokeninfo. Defaults to ``user-N@example.com``.
            quota_project: Written as the file's ``quota_project_id``, as gcloud does after
                ``gcloud auth application-default set-quota-project``. Default none.
            rapt: Put the user under a reauth policy: the file gets a ``rapt_token``, and a
                refresh without it as ``rapt`` is ``invalid_grant`` ("reauth related error
                (invalid_rapt)"). Default ``False``.

        Examples:
            >>> from goth_actors.testing import GoogleEmulator
            >>> from google.oauth2 import credentials
            >>> with GoogleEmulator() as emu:
            ...     info = emu.authorized_user()
            ...     # google-auth 2.63 replaces the info's token_uri with Google's: set it back.
            ...     creds = credentials.Credentials.from_authorized_user_info(info).with_token_uri(
            ...         info["token_uri"]
            ...     )
        """
        return self._google.authorized_user(scopes, email, quota_project=quota_project, rapt=rapt)

    def workforce_user(
        self, *, email: str | None = None, quota_project: str | None = None
    ) -> dict[str, str]:
        """Creates a workforce pool user; returns their ``external_account_authorized_user`` file.

        What ``gcloud auth application-default login`` writes for a user of a workforce pool:
        ``audience`` (the pool's provider), ``refresh_token``, ``client_id``,
        ``client_secret``, ``token_url`` (STS's ``/v1/oauthtoken`` on the emulator, which
        checks the client by HTTP Basic authentication), ``token_info_url`` (``/v1/introspect``)
        and ``universe_domain``. Their tokens are a person's: the emulator's API wants a quota
        project with them. tokeninfo shows the email
        ``principal://iam.googleapis.com/locations/global/workforcePools/{pool}/subject/{email}``.

        Args:
            email: The user's subject. Defaults to ``worker-N@example.com``.
            quota_project: Written as the file's ``quota_project_id``. Default none.

        Examples:
            >>> from goth_actors.testing import GoogleEmulator
            >>> with GoogleEmulator() as emu:
            ...     emu.workforce_user()["type"]
            'external_account_authorized_user'
        """
        user = self._workforce.create_user(email)
        info = {
            "type": "external_account_authorized_user",
            "audience": f"//iam.googleapis.com/locations/global/workforcePools/{user.pool}/"
            "providers/emulator-provider",
            "refresh_token": user.refresh_token,
            "client_id": user.client_id,
            "client_secret": user.client_secret,
            "token_url": f"{self.url}{OAUTHTOKEN_PATH}",
            "token_info_url": f"{self.url}{INTROSPECT_PATH}",
            "universe_domain": self._google.universe_domain,
        }
        if quota_project:
            info["quota_project_id"] = quota_project
        return info

    def impersonated_service_account(
        self,
        source_credentials: dict[str, Any],
        target: str,
        *,
        scopes: Sequence[str] | None = None,
        delegates: Iterable[str] = (),
        quota_project: str | None = None,
    ) -> dict[str, Any]:
        """Gcloud's ``impersonated_service_account`` file, for the emulator's IAM.

        ``source_credentials`` acting as ``target`` (created if the emulator has not issued it)
        through the emulator's IAM.

        Args:
            source_credentials: The impersonating identity's file (a user's, a workforce
                user's, a service account's).
            target: The service account impersonated.
            scopes: Written as the file's ``scopes``. Default none.
            delegates: The delegation chain, as emails. Default none.
            quota_project: Written as the file's ``quota_project_id``. Default none.

        Examples:
            >>> from goth_actors.testing import GoogleEmulator
            >>> with GoogleEmulator() as emu:
            ...     user = emu.authorized_user()
            ...     info = emu.impersonated_service_account(user, "sa@p.iam.gserviceaccount.com")
            ...     info["type"]
            'impersonated_service_account'
        """
        self._google.ensure_account(target)
        info: dict[str, Any] = {
            "type": "impersonated_service_account",
            "service_account_impersonation_url": (
                f"{self.iam_url}/v1/projects/-/serviceAccounts/{target}:generateAccessToken"
            ),
            "source_credentials": dict(source_credentials),
            "delegates": list(delegates),
        }
        if scopes is not None:
            info["scopes"] = list(scopes)
        if quota_project:
            info["quota_project_id"] = quota_project
        return info

    def revoke(self, identity: str) -> None:
        """Revokes an identity: its grants now get 400 ``invalid_grant`` and its tokens die.

        Args:
            identity: A service account's ``client_email`` or ``client_id`` ("Invalid grant:
                account not found"; IAM will not impersonate it either), one of its
                ``private_key_id`` ("Invalid JWT Signature."), an authorized user's
                ``client_id`` or ``refresh_token`` ("Token has been expired or revoked."), a
                workload identity pool's ``audience`` ("The workload identity pool is
                disabled."), or a workforce user's ``client_id`` or ``refresh_token``.
                Anything else raises ``ValueError``.

        Examples:
            ```python
            emu.revoke(key["client_email"])
            ```
        """
        self._google.revoke(identity)

    def token_info(self, token: str) -> dict[str, str] | None:
        """What ``/oauth2/v3/tokeninfo`` says of a token issued here, or ``None`` if invalid.

        Access tokens give ``azp``, ``aud``, ``sub``, ``email``, ``scope``, ``exp`` and
        ``expires_in`` (strings, seconds); ID tokens give their claims as strings plus
        ``expires_in``. Unknown, expired and revoked tokens give ``None``. A token IAM issued
        by impersonation has the impersonated account's ``email``; an STS token has its
        federated principal's, ``principal://iam.googleapis.com/.../subject/{subject}``. A
        service account's self-signed JWT (signed by one of its unrevoked keys, unexpired,
        with a ``scope`` or an ``aud``) is described as its access token, with
        ``self_signed: "true"``.

        Examples:
            ```python
            emu.token_info(creds.token)["scope"]
            ```
            'https://www.googleapis.com/auth/pubsub'
        """
        return self._google.token_info(token)

    def verify_signed_blob(self, email: str, data: bytes, signature: bytes) -> bool:
        """Whether ``signature`` is ``email``'s RSASSA-PKCS1-v1_5 SHA-256 signature of ``data``.

        Any unrevoked key of the account counts: a key file's (local signing) or the
        Google-managed one ``signBlob`` signs with.

        Examples:
            ```python
            assert emu.verify_signed_blob(key["client_email"], b"data", signature)
            ```
        """
        return verify_blob(self._google, email, data, signature)
