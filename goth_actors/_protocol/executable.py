"""Executable-sourced workload identity (pluggable auth): a program prints the subject token.

Only when ``GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES=1`` (a credential file must not be able
to run programs by itself). The ``command`` is split as a shell would (``shlex``) but run
without one, with stdin closed, under the smaller of ``timeout_millis`` (default 30 s, 5 s to
120 s) and what is left of the exchange's deadline, with the ``GOOGLE_EXTERNAL_ACCOUNT_*``
environment google-auth passes. Its standard output (at most 1 MiB) is response format
version 1:

    {"version": 1, "success": true, "token_type": "urn:ietf:params:oauth:token-type:jwt",
     "id_token": "...", "expiration_time": 1700000000}

with ``token_type`` ``...:jwt`` or ``...:id_token`` (``id_token``) or ``...:saml2``
(``saml_response``), or ``{"version": 1, "success": false, "code": ..., "message": ...}``.
With an ``output_file``, a response there that is successful and unexpired is used without
running the program, and a program that prints nothing may write its response there. Each
failure is its own clear error; nothing of a response but the program's own ``code`` and
``message`` (escaped, shortened) is ever quoted.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import shlex
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from goth_actors._base import ConfigError
from goth_actors._protocol.errors import TokenError
from goth_actors._protocol.files import MAX_FILE_BYTES, NOT_JSON, decode_utf8, parse_json
from goth_actors._protocol.files import read_text as read_file_text
from goth_actors._protocol.redact import escape, redact
from goth_actors._protocol.subject import Subject, SubjectContext
from goth_actors._protocol.token import Exchanger

__all__ = ["ALLOW_EXECUTABLES", "ExecutableSubjectSource", "executable_source"]

ALLOW_EXECUTABLES = "GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES"
_DEFAULT_TIMEOUT_MILLIS = 30_000
_TIMEOUT_BOUNDS = (5_000, 120_000)
_INTERACTIVE_BOUNDS = (30_000, 30 * 60_000)
_TOKEN_FIELDS = {
    "urn:ietf:params:oauth:token-type:jwt": "id_token",
    "urn:ietf:params:oauth:token-type:id_token": "id_token",
    "urn:ietf:params:oauth:token-type:saml2": "saml_response",
}
_KEYS = ("command", "timeout_millis", "output_file", "interactive_timeout_millis")


def _failure(problem: str, *, retryable: bool = False) -> TokenError:
    return TokenError(f"the credential executable {problem}", retryable=retryable)


@dataclass(frozen=True, slots=True)
class ExecutableSubjectSource:
    """A validated executable ``credential_source``."""

    command: str
    timeout: float
    output_file: str | None

    def describe(self) -> str:
        return f"executable {shlex.split(self.command)[0]!r}"

    def read(self, exchanger: Exchanger, context: SubjectContext) -> Subject:
        """The cached response if still good, else the program's; its subject token."""
        env = dict(os.environ if exchanger.environ is None else exchanger.environ)
        if env.get(ALLOW_EXECUTABLES) != "1":
            raise _failure(
                f"is not run: executables must be allowed explicitly ({ALLOW_EXECUTABLES}=1)"
            )
        now = exchanger.clock()
        if self.output_file is not None:
            cached = _cached(self.output_file, now)
            if cached is not None:
                return Subject(cached)
        env.update(
            GOOGLE_EXTERNAL_ACCOUNT_AUDIENCE=context.audience,
            GOOGLE_EXTERNAL_ACCOUNT_TOKEN_TYPE=context.subject_token_type,
            GOOGLE_EXTERNAL_ACCOUNT_ID=context.impersonated_email or "",
            GOOGLE_EXTERNAL_ACCOUNT_INTERACTIVE="0",
            GOOGLE_EXTERNAL_ACCOUNT_REVOKE="0",
        )
        if context.impersonated_email is not None:
            env["GOOGLE_EXTERNAL_ACCOUNT_IMPERSONATED_EMAIL"] = context.impersonated_email
        if self.output_file is not None:
            env["GOOGLE_EXTERNAL_ACCOUNT_OUTPUT_FILE"] = self.output_file
        timeout = min(self.timeout, exchanger.time_left(self.describe()))
        output = _run(shlex.split(self.command), env, timeout)
        if not output.strip() and self.output_file is not None:
            text = read_file_text(self.output_file)
            if isinstance(text, str):
                output = text
        return Subject(_subject_token(output, exchanger.clock()))


def _run(argv: list[str], env: Mapping[str, str], timeout: float) -> str:
    """Runs ``argv`` without a shell; its standard output, read up to the size limit."""
    started = time.monotonic()
    process: subprocess.Popen[bytes] | None = None
    reason = ""
    try:
        process = subprocess.Popen(  # noqa: S603 - no shell; what the credentials name
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=dict(env),
        )
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
    if process is None:
        raise _failure(f"{argv[0][:100]!r} could not be started: {reason}")
    chunks: list[bytes] = []
    size = 0
    problem: TokenError | None = None
    assert process.stdout is not None
    with process, selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while True:
            left = timeout - (time.monotonic() - started)
            if left <= 0:
                problem = _failure(f"timed out after {timeout:g} s", retryable=True)
                break
            if not selector.select(left):
                continue
            chunk = os.read(process.stdout.fileno(), 64 * 1024)
            if not chunk:
                break
            size += len(chunk)
            if size > MAX_FILE_BYTES:
                problem = _failure(f"printed more than {MAX_FILE_BYTES} bytes")
                break
            chunks.append(chunk)
        if problem is not None:
            process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(max(0.1, timeout - (time.monotonic() - started)))
        if process.returncode is None:
            process.kill()
            problem = problem or _failure(f"timed out after {timeout:g} s", retryable=True)
    if problem is not None:
        raise problem
    if process.returncode != 0:
        raise _failure(f"exited with status {process.returncode}", retryable=True)
    text = decode_utf8(b"".join(chunks))
    if text is None:
        raise _failure("printed something that is not UTF-8")
    return text


def _cached(path: str, now: float) -> str | None:
    """The subject token of a good, unexpired response in the output file, or ``None``."""
    text = read_file_text(path)
    if not isinstance(text, str):
        return None
    response = parse_json(text)
    if not isinstance(response, dict) or "expiration_time" not in response:
        return None  # as google-auth: no expiration_time means run the program
    try:
        return _subject_token_from(response, now)
    except TokenError:
        return None


def _subject_token(output: str, now: float) -> str:
    response = parse_json(output)
    if response is NOT_JSON or not isinstance(response, dict):
        raise _failure("printed a response that is not a JSON object")
    return _subject_token_from(response, now)


def _subject_token_from(response: Mapping[str, Any], now: float) -> str:
    version = response.get("version")
    if isinstance(version, bool) or not isinstance(version, int):
        raise _failure("printed a response without a version number")
    if version > 1:
        raise _failure(f"printed a response of version {version}; version 1 is supported")
    success = response.get("success")
    if not isinstance(success, bool):
        raise _failure("printed a response without success: true or false")
    if not success:
        code, message = response.get("code"), response.get("message")
        if code is None or message is None:
            raise _failure("failed and printed no code and message")
        shown = escape(redact(f"code {str(code)[:100]!r}, message {str(message)[:200]!r}"))
        raise _failure(f"failed: {shown}", retryable=True)
    expiration = response.get("expiration_time")
    if expiration is not None:
        if isinstance(expiration, bool) or not isinstance(expiration, int | float):
            raise _failure("printed an expiration_time that is not a number")
        if expiration < now:
            raise _failure("printed a token that has already expired", retryable=True)
    token_type = response.get("token_type")
    field_name = _TOKEN_FIELDS.get(token_type) if isinstance(token_type, str) else None
    if field_name is None:
        raise _failure(
            "printed a token_type that is not ...:jwt, ...:id_token or ...:saml2"
            if token_type is not None
            else "printed a response without a token_type"
        )
    token = response.get(field_name)
    if not isinstance(token, str) or not token.strip():
        raise _failure(f"printed a response without its {field_name}")
    return token.strip()


def _millis(value: object, name: str, bounds: tuple[int, int]) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(name, f"must be a whole number of milliseconds, got {value!r:.40}")
    if not bounds[0] <= value <= bounds[1]:
        raise ConfigError(name, f"must be between {bounds[0]} and {bounds[1]}, got {value}")
    return value


def executable_source(value: object, name: str) -> ExecutableSubjectSource:
    """Validates ``credential_source.executable`` (``name`` is its field, for errors)."""
    if not isinstance(value, Mapping):
        raise ConfigError(name, f"must be a mapping with a command, got {type(value).__name__}")
    unknown = sorted(str(k)[:40] for k in value if k not in _KEYS)
    if unknown:
        raise ConfigError(name, f"has unknown keys {unknown}; expected {', '.join(_KEYS)}")
    command = value.get("command")
    if not isinstance(command, str) or not command.strip():
        raise ConfigError(f"{name}.command", "must be a non-empty command line")
    try:
        argv = shlex.split(command)
    except ValueError:
        argv = []
    if not argv:
        raise ConfigError(f"{name}.command", "is not a command line (unbalanced quotes?)")
    millis = value.get("timeout_millis")
    millis = _DEFAULT_TIMEOUT_MILLIS if millis is None else millis
    timeout = _millis(millis, f"{name}.timeout_millis", _TIMEOUT_BOUNDS)
    interactive = value.get("interactive_timeout_millis")
    if interactive is not None:  # only checked: goth_actors never runs one interactively
        _millis(interactive, f"{name}.interactive_timeout_millis", _INTERACTIVE_BOUNDS)
    output_file = value.get("output_file")
    if output_file is not None and (not isinstance(output_file, str) or not output_file.strip()):
        raise ConfigError(f"{name}.output_file", "must be a non-empty path")
    return ExecutableSubjectSource(command, timeout / 1000, output_file)
