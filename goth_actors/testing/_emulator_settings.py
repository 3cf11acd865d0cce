"""The emulator's settings.

Token lifetimes, the metadata server's identity and project, IAM's limits and ``expireTime``
format, the universe, the API's quota rule and the fake AWS.

`EmulatorSettings` is the part of `GoogleEmulator` that
holds them, each a checked property. A mixin: the fakes hold the values.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from datetime import timedelta

from goth_actors.testing._emulator_aws import FakeAws
from goth_actors.testing._emulator_google import FakeGoogle
from goth_actors.testing._emulator_iam import FakeIam, check_iam_settings

__all__ = ["EmulatorSettings"]

_DOMAIN = re.compile(r"(?:[a-z0-9-]+\.)+[a-z0-9-]+")


class EmulatorSettings:
    """Settings of the emulator (a mixin of ``GoogleEmulator``)."""

    _google: FakeGoogle
    _iam: FakeIam
    _aws: FakeAws

    @property
    def token_lifetime(self) -> float:
        """Seconds each token issued from now on lives.

        Sent as ``expires_in`` (an int when whole). ID tokens get ``iat`` in whole seconds and
        ``exp = iat + ceil(token_lifetime)``.

        Examples:
            >>> from goth_actors.testing import GoogleEmulator
            >>> emu = GoogleEmulator(token_lifetime=0.05)
            >>> emu.token_lifetime = 60
        """
        return self._google.token_lifetime

    @token_lifetime.setter
    def token_lifetime(self, seconds: float) -> None:
        if isinstance(seconds, bool) or not (math.isfinite(seconds) and seconds > 0):
            raise ValueError(
                f"token_lifetime must be a positive, finite number of seconds, not {seconds!r}"
            )
        self._google.token_lifetime = float(seconds)

    @property
    def metadata_email(self) -> str:
        """The metadata server's service account (its ``default``).

        Examples:
            >>> from goth_actors.testing import GoogleEmulator
            >>> emu = GoogleEmulator()
            >>> emu.metadata_email = "runner@my-project.iam.gserviceaccount.com"
        """
        return self._google.metadata_email

    @metadata_email.setter
    def metadata_email(self, email: str) -> None:
        self._google.metadata_email = email

    @property
    def metadata_scopes(self) -> Sequence[str]:
        """The metadata service account's scopes (a space-separated str is split).

        Examples:
            >>> from goth_actors.testing import GoogleEmulator
            >>> emu = GoogleEmulator()
            >>> emu.metadata_scopes = ["https://www.googleapis.com/auth/pubsub"]
        """
        return tuple(self._google.metadata_scopes)

    @metadata_scopes.setter
    def metadata_scopes(self, scopes: Iterable[str]) -> None:
        self._google.metadata_scopes = (
            tuple(scopes.split()) if isinstance(scopes, str) else tuple(scopes)
        )

    @property
    def project_id(self) -> str:
        """The project of issued service accounts and of ``project/project-id``.

        Examples:
            >>> from goth_actors.testing import GoogleEmulator
            >>> emu = GoogleEmulator()
            >>> emu.project_id = "my-project"
        """
        return self._google.project_id

    @project_id.setter
    def project_id(self, project_id: str) -> None:
        self._google.project_id = project_id

    @property
    def iam_max_lifetime(self) -> float:
        """The longest ``lifetime`` IAM's generateAccessToken grants; longer is a 400.

        Defaults to 3600 s, as Google; up to 43200 s where an organization policy allows it.
        The token issued lives ``min(lifetime, token_lifetime)``.

        Examples:
            >>> from goth_actors.testing import GoogleEmulator
            >>> emu = GoogleEmulator()
            >>> emu.iam_max_lifetime = 43200
        """
        return self._iam.iam_max_lifetime

    @iam_max_lifetime.setter
    def iam_max_lifetime(self, seconds: float) -> None:
        check_iam_settings(seconds, self.expire_time_offset, self.expire_time_digits)
        self._iam.iam_max_lifetime = float(seconds)

    @property
    def expire_time_offset(self) -> timedelta:
        """The UTC offset of IAM's ``expireTime``: zero (the default, as Google) sends ``Z``.

        Any other whole-minute offset under a day sends the same instant with that offset,
        ``2024-05-01T14:00:00+02:00``, so a client that only handles ``Z`` shows itself.

        Examples:
            >>> from goth_actors.testing import GoogleEmulator
            >>> from datetime import timedelta
            >>> emu = GoogleEmulator()
            >>> emu.expire_time_offset = timedelta(hours=2)
        """
        return self._iam.expire_time_offset

    @expire_time_offset.setter
    def expire_time_offset(self, offset: timedelta) -> None:
        check_iam_settings(self.iam_max_lifetime, offset, self.expire_time_digits)
        self._iam.expire_time_offset = offset

    @property
    def expire_time_digits(self) -> int:
        """Fractional-second digits of IAM's ``expireTime``, 0 (the default) to 9.

        The time is rounded up at that precision, and the token lives until then.

        Examples:
            >>> from goth_actors.testing import GoogleEmulator
            >>> emu = GoogleEmulator()
            >>> emu.expire_time_digits = 9  # ...T12:00:00.123456789Z
        """
        return self._iam.expire_time_digits

    @expire_time_digits.setter
    def expire_time_digits(self, digits: int) -> None:
        check_iam_settings(self.iam_max_lifetime, self.expire_time_offset, digits)
        self._iam.expire_time_digits = digits

    @property
    def universe_domain(self) -> str:
        """The universe of the credentials issued from now on and of the metadata server.

        Defaults to ``"googleapis.com"``. In another universe, service-account keys are
        used as self-signed JWTs (there is no JWT-bearer grant there), as google-auth does.

        Examples:
            >>> from goth_actors.testing import GoogleEmulator
            >>> emu = GoogleEmulator()
            >>> emu.universe_domain = "example-universe.test"
        """
        return self._google.universe_domain

    @universe_domain.setter
    def universe_domain(self, domain: str) -> None:
        if not isinstance(domain, str) or not _DOMAIN.fullmatch(domain):
            raise ValueError(f"universe_domain must be a domain name, not {domain!r}")
        self._google.universe_domain = domain

    @property
    def require_quota_project(self) -> bool:
        """Whether the emulator's API refuses a person's token without a quota project.

        The API ([`api_url`][goth_actors.testing.GoogleEmulator.api_url]) then refuses a user's
        or a workforce user's token without ``x-goog-user-project``, as APIs that need a quota
        project do. Defaults to ``True``.

        Examples:
            >>> from goth_actors.testing import GoogleEmulator
            >>> emu = GoogleEmulator()
            >>> emu.require_quota_project = False
        """
        return self._google.require_quota_project

    @require_quota_project.setter
    def require_quota_project(self, required: bool) -> None:
        self._google.require_quota_project = bool(required)

    @property
    def aws_region(self) -> str:
        """The fake EC2 instance's region (its availability zone is this plus ``b``).

        Defaults to ``"us-east-2"``.

        Examples:
            >>> from goth_actors.testing import GoogleEmulator
            >>> emu = GoogleEmulator()
            >>> emu.aws_region = "eu-west-1"
        """
        return self._aws.region

    @aws_region.setter
    def aws_region(self, region: str) -> None:
        if not isinstance(region, str) or not re.fullmatch(r"[a-z]{2}(-[a-z]+)+-\d", region):
            raise ValueError(
                f"aws_region must be an AWS region such as 'us-east-2', not {region!r}"
            )
        self._aws.region = region

    @property
    def aws_imdsv2_required(self) -> bool:
        """Whether the fake instance metadata service wants an IMDSv2 session token.

        Without one, reads are refused (``401``). Defaults to ``True``, as a hardened instance.

        Examples:
            >>> from goth_actors.testing import GoogleEmulator
            >>> emu = GoogleEmulator()
            >>> emu.aws_imdsv2_required = False
        """
        return self._aws.imdsv2_required

    @aws_imdsv2_required.setter
    def aws_imdsv2_required(self, required: bool) -> None:
        self._aws.imdsv2_required = bool(required)
