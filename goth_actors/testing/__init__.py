"""Test helpers for code that uses Google tokens: a local, real-HTTP fake of Google.

[`GoogleEmulator`][goth_actors.testing.GoogleEmulator] serves Google's OAuth2 token endpoint, the
GCE metadata server, tokeninfo and ID-token keys on 127.0.0.1, closely enough that google-auth
accepts it, with controls for failures, delays, outages and revocation.
[`run_soak`][goth_actors.testing.run_soak] runs a chaos soak of token servers against it;
[`FakeTime`][goth_actors.otp.FakeTime] (re-exported here) drives time in tests.

Examples:
    >>> from goth_actors.testing import GoogleEmulator
    >>> with GoogleEmulator() as emu:
    ...     key = emu.service_account()
    ...     key["token_uri"] == emu.token_url
    True
"""

from goth_actors.otp import FakeTime
from goth_actors.testing._emulator import GoogleEmulator
from goth_actors.testing._emulator_messages import RecordedRequest
from goth_actors.testing._soak import SoakReport, run_soak

__all__ = ["FakeTime", "GoogleEmulator", "RecordedRequest", "SoakReport", "run_soak"]
