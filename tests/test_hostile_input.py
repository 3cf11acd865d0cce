"""Hostile input: whatever the credentials, options or names, a clear error naming the field.

Property tests (hypothesis) throw arbitrary JSON-like values and damaged keys at the sources;
each must raise ConfigError (a ValueError) naming a field, and never echo key material.
"""

from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import goth_actors
from goth_actors import (
    ConfigError,
    HttpResponse,
    Metadata,
    RefreshToken,
    ServerNotFound,
    ServiceAccount,
    Token,
    TokenEndpointError,
    TransportError,
    default_source,
    source_from_credentials,
)
from goth_actors._protocol import redact
from goth_actors._protocol.redact import without_query
from goth_actors.testing import GoogleEmulator

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=50),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=20), children, max_size=4)
    ),
    max_leaves=12,
)

SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _pem_fragments(pem: str) -> list[str]:
    body = "".join(line for line in pem.splitlines() if not line.startswith("-----"))
    return [body[i : i + 16] for i in range(0, len(body) - 16, 16)]


def _config_error(build: Callable[[], object]) -> ConfigError | None:
    """The ConfigError ``build`` raises, or None when it succeeds; any other error fails."""
    try:
        build()
    except ConfigError as error:
        return error
    return None


def _echoes_key(text: str, pem: str) -> bool:
    return any(fragment in text for fragment in _pem_fragments(pem))


@SETTINGS
@given(credentials=json_values)
def test_arbitrary_values_as_service_account_credentials_are_config_errors(
    credentials: Any,
) -> None:
    with pytest.raises(ConfigError) as info:
        ServiceAccount(credentials)
    assert info.value.field.startswith("credentials")


@SETTINGS
@given(credentials=json_values)
def test_arbitrary_values_as_user_credentials_are_config_errors(credentials: Any) -> None:
    with pytest.raises(ConfigError) as info:
        RefreshToken(credentials)
    assert info.value.field.startswith("credentials")


@SETTINGS
@given(credentials=json_values)
def test_arbitrary_key_files_are_config_errors_when_picking_a_source(credentials: Any) -> None:
    with pytest.raises(ConfigError) as info:
        source_from_credentials(credentials)
    assert info.value.field.startswith("credentials")


@SETTINGS
@given(data=st.data())
def test_a_damaged_private_key_is_refused_without_echoing_it(
    rsa_private_key_pem: str, data: st.DataObject
) -> None:
    pem = rsa_private_key_pem
    damage = data.draw(st.sampled_from(["truncate", "flip", "insert", "strip_header"]))
    position = data.draw(st.integers(min_value=40, max_value=len(pem) - 40))
    if damage == "truncate":
        damaged = pem[:position]
    elif damage == "flip":
        replacement = "A" if pem[position] != "A" else "B"
        damaged = pem[:position] + replacement + pem[position + 1 :]
        if damaged.count("\n") != pem.count("\n") or pem[position] in "-\n":
            damaged = pem[:position]  # flipping a separator is just another truncation
    elif damage == "insert":
        damaged = pem[:position] + data.draw(st.text(min_size=1, max_size=30)) + pem[position:]
    else:
        damaged = "\n".join(line for line in pem.splitlines() if not line.startswith("-----"))
    key = {"type": "service_account", "client_email": "x@y.iam", "private_key": damaged}
    error = _config_error(lambda: ServiceAccount(key))
    # A flip inside the base64 body can leave a key that still parses (it is another number):
    # then construction succeeds, and the server rejects its signature later.
    if error is not None:
        assert error.field == "credentials.private_key"
        assert not _echoes_key(str(error), pem)
        assert error.__cause__ is None


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("client_email", "x" * 1_000_000),
        ("client_email", ["a@b"]),
        ("client_email", ""),
        ("private_key", 12),
        ("private_key", "x" * 1_000_000),
        ("type", "external_account"),
        ("type", "x" * 10_000),
        ("token_uri", "file:///etc/passwd"),
        ("token_uri", 3),
    ],
)
def test_hostile_fields_are_named_and_not_echoed(
    rsa_private_key_pem: str, field: str, value: object
) -> None:
    key: dict[str, Any] = {
        "type": "service_account",
        "client_email": "x@y.iam",
        "private_key": rsa_private_key_pem,
    }
    key[field] = value
    with pytest.raises(ConfigError) as info:
        ServiceAccount(key)
    assert info.value.field == f"credentials.{field}"
    assert len(str(info.value)) < 300


def test_user_secrets_are_never_echoed() -> None:
    secret = "GOCSPX-" + "s" * 28
    with pytest.raises(ConfigError) as info:
        RefreshToken({"client_id": "c", "client_secret": secret, "refresh_token": 5})
    assert secret not in str(info.value)
    assert "1//" not in repr(
        RefreshToken({"client_id": "c", "client_secret": "x", "refresh_token": "1//r"})
    )


@SETTINGS
@given(account=json_values, audience=json_values, scopes=json_values)
def test_metadata_options_of_any_type_are_config_errors_or_valid(
    account: Any, audience: Any, scopes: Any
) -> None:
    error = _config_error(lambda: Metadata(account=account, audience=audience, scopes=scopes))
    if error is not None:
        assert error.field in ("account", "audience", "scopes")
    else:
        source = Metadata(account=account, audience=audience, scopes=scopes)
        assert isinstance(source.prepare(0.0, {}).url, str)


# ---------------------------------------------------------------------------------- names


@pytest.mark.usefixtures("shutdown_servers")
@pytest.mark.parametrize("name", [["a", "list"], {"a": "dict"}, {"a", "set"}])
def test_unhashable_names_are_refused_everywhere(emulator: GoogleEmulator, name: Any) -> None:
    with pytest.raises(ConfigError, match="hashable") as info:
        goth_actors.start_link(name=name, source=Metadata(url=emulator.metadata_url))
    assert info.value.field == "name"
    with pytest.raises(TypeError, match="hashable"):
        goth_actors.fetch(name)
    with pytest.raises(TypeError, match="hashable"):
        goth_actors.whereis(name)


@pytest.mark.usefixtures("shutdown_servers")
def test_a_name_is_reused_after_stop_with_nothing_carried_over(emulator: GoogleEmulator) -> None:
    source = Metadata(url=emulator.metadata_url)
    for round_ in range(3):
        goth_actors.start_link(name=("tenant", 1), source=source, prefetch="sync")
        assert goth_actors.status(("tenant", 1)).restarts == 0, round_
        goth_actors.stop(("tenant", 1))
        with pytest.raises(ServerNotFound):
            goth_actors.fetch(("tenant", 1))


@pytest.mark.usefixtures("shutdown_servers")
def test_very_many_names_each_get_their_own_server(emulator: GoogleEmulator) -> None:
    source = Metadata(url=emulator.metadata_url)
    names = [("tenant", i) for i in range(200)]
    for name in names:
        goth_actors.start_link(name=name, source=source)
    tokens = {goth_actors.fetch(name, timeout=30.0).token for name in names}
    assert len(tokens) == 200
    assert len(emulator.requests_to("metadata")) == 200


def test_error_messages_never_carry_a_jwt_or_a_bearer_token() -> None:
    pattern = re.compile(r"eyJ[\w-]+\.[\w-]+\.[\w-]+|ya29\.[\w.-]+")
    with pytest.raises(ConfigError) as info:
        source_from_credentials({"type": "ya29.secret-token-value eyJa.eyJb.sig"})
    assert not pattern.search(str(info.value))


# ------------------------------------------------------------------- credential files (11.5)


def _adc_error(path: Path) -> ConfigError:
    environ = {"GOOGLE_APPLICATION_CREDENTIALS": str(path)}
    with pytest.raises(ConfigError) as info:
        default_source(environ=environ)
    assert info.value.field == "GOOGLE_APPLICATION_CREDENTIALS"
    assert info.value.__cause__ is None
    assert info.value.__context__ is None  # JSONDecodeError.doc would be the whole file
    return info.value


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"\xff\xfe binary \x00\x01", "is not UTF-8"),
        (b"[" * 100_000, "nested deeper"),
        (b'{"a": ' * 5_000 + b"1" + b"}" * 5_000, "nested deeper"),
        (b" " * (2 * 1024 * 1024), "larger than"),
        (b'{"type": "service_account", ', "not valid JSON"),
        (b'["a JSON list"]', "does not hold a JSON object"),
    ],
    ids=["binary", "deep list", "deep object", "2 MiB", "truncated", "not an object"],
)
def test_a_hostile_key_file_is_a_config_error_never_a_raw_exception(
    tmp_path: Path, content: bytes, problem: str
) -> None:
    path = tmp_path / "key.json"
    path.write_bytes(content)
    assert problem in str(_adc_error(path))


def test_a_device_or_a_directory_as_the_key_file_is_refused_without_reading_it(
    tmp_path: Path,
) -> None:
    assert "not a regular file" in str(_adc_error(Path("/dev/zero")))  # was a MemoryError
    assert "not a regular file" in str(_adc_error(tmp_path))


FIFO_PROGRAM = """
import os, sys
import goth_actors
try:
    goth_actors.default_source(environ={"GOOGLE_APPLICATION_CREDENTIALS": sys.argv[1]})
except goth_actors.ConfigError as error:
    print(error, flush=True)
"""


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_as_the_key_file_is_refused_without_hanging(tmp_path: Path) -> None:
    fifo = tmp_path / "key.json"
    os.mkfifo(fifo)  # nobody will ever write to it: opening it for reading used to block
    result = subprocess.run(
        [sys.executable, "-c", FIFO_PROGRAM, str(fifo)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "not a regular file" in result.stdout


@pytest.mark.slow
def test_the_command_line_gives_one_line_for_a_deeply_nested_key_file(tmp_path: Path) -> None:
    path = tmp_path / "key.json"
    path.write_text("[" * 100_000)
    result = subprocess.run(
        [sys.executable, "-m", "goth_actors._cli", "token"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "GOOGLE_APPLICATION_CREDENTIALS": str(path)},
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_an_id_token_with_a_deeply_nested_payload_is_an_endpoint_error(
    emulator: GoogleEmulator,
) -> None:
    payload = base64.urlsafe_b64encode(b"[" * 8_000).rstrip(b"=").decode()
    emulator.respond_next(
        1, 200, f"eyJhbGciOiJSUzI1NiJ9.{payload}.c2ln", {"Metadata-Flavor": "Google"}
    )
    with pytest.raises(TokenEndpointError, match="not a JWT") as info:
        Token.fetch(Metadata(url=emulator.metadata_url, audience="https://aud"))
    assert info.value.retryable is False


# --------------------------------------------------------------- errors and their causes (11.7)

SECRET = "ya29.secret-token-in-a-header"


def _quoting_client(**request: Any) -> HttpResponse:
    # What requests does with a header value it refuses: quote it in its message.
    raise requests.exceptions.InvalidHeader(
        f"Invalid leading whitespace in header value: {request['headers']!r} {SECRET}"
    )


def _whole_chain(error: BaseException) -> str:
    return "".join(traceback.format_exception(error)) + repr(error.__cause__)


def test_an_http_clients_exception_is_never_chained_unredacted() -> None:
    source = RefreshToken(
        {"client_id": "c", "client_secret": "GOCSPX-secret", "refresh_token": "1//r" + "x" * 20}
    )
    with pytest.raises(TransportError) as info:
        Token.fetch(source, http_client=_quoting_client)
    error = info.value
    assert type(error.__cause__).__name__ == "RedactedCause"
    assert error.__cause__.__cause__ is None  # type: ignore[union-attr]
    assert error.__cause__.__context__ is None  # type: ignore[union-attr]
    text = _whole_chain(error)
    assert "InvalidHeader" in text
    assert SECRET not in text
    assert "GOCSPX-secret" not in text


@pytest.mark.usefixtures("shutdown_servers")
def test_a_servers_stored_error_and_its_events_carry_no_unredacted_cause() -> None:
    events: list[goth_actors.Event] = []
    unsubscribe = goth_actors.subscribe(events.append)
    try:
        goth_actors.start_link(
            name="quoted",
            source=Metadata(url="http://127.0.0.1:9"),
            http_client=_quoting_client,
            prefetch="sync",
        )
    finally:
        unsubscribe()
    stored = goth_actors.status("quoted").last_error
    assert stored is not None
    errors = [stored, *(event.error for event in events if event.error is not None)]
    for error in errors:
        assert SECRET not in _whole_chain(error)


# ------------------------------------------------------------------- remote text (11.8, 11.10)


@pytest.mark.usefixtures("shutdown_servers")
def test_an_endpoint_cannot_forge_log_lines_or_drive_the_terminal(
    emulator: GoogleEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    forged = {
        "error": "invalid_grant\nWARNING goth_actors.server: all good",
        "error_description": "\x1b[2J\x1b[31mpwned\r\nERROR forged\u2028line\x00",
    }
    emulator.respond_next(1, 400, forged, {"Location": "http://x/\nforged"}, endpoint="token")
    with pytest.raises(TokenEndpointError) as info:
        Token.fetch(RefreshToken(emulator.authorized_user()))
    error = info.value
    for text in (str(error), error.error or "", error.error_description or "", error.body):
        assert not any(c in text for c in "\n\r\x1b\x00\u2028"), text
    assert "\\x1b[2J" in str(error)  # shown, escaped: nothing lost to the reader
    # A token server's log lines about the same answer are single, escaped lines too.
    emulator.respond_next(1, 400, forged, endpoint="token")
    goth_actors.start_link(
        name="forged", source=RefreshToken(emulator.authorized_user()), prefetch="sync"
    )
    lines = [record.getMessage() for record in caplog.records]
    assert any("pwned" in line for line in lines)
    assert not any(c in line for line in lines for c in "\n\r\x1b\x00\u2028")


def test_a_one_character_secret_does_not_garble_messages() -> None:
    # On main, every "a" of the message became "<redacted>".
    assert redact("invalid_client: a client was not found", ("a",)) == (
        "invalid_client: <redacted> client was not found"
    )
    assert redact("Unauthorized", ("a",)) == "Unauthorized"
    assert redact("secret=a&x=1", ("a",)) == "secret=<redacted>&x=1"
    long_secret = "GOCSPX-abcdefgh"
    assert redact(f"id{long_secret}x", (long_secret,)) == "id<redacted>x"


def test_a_short_client_secret_is_redacted_whole_in_an_endpoints_answer(
    emulator: GoogleEmulator,
) -> None:
    user = emulator.authorized_user()
    emulator.fail_next(1, 401, body='{"error": "invalid_client", "error_description": "a is bad"}')
    with pytest.raises(TokenEndpointError) as info:
        Token.fetch(RefreshToken({**user, "client_secret": "a"}))
    assert str(info.value).endswith("invalid_client: <redacted> is bad")


def test_load_credentials_reads_a_key_file_with_the_same_guards(tmp_path: Path) -> None:
    path = tmp_path / "key.json"
    path.write_text('{"type": "authorized_user"}')
    assert goth_actors.load_credentials(path) == {"type": "authorized_user"}
    for hostile in (Path("/dev/zero"), tmp_path / "missing.json"):
        with pytest.raises(ConfigError) as info:
            goth_actors.load_credentials(hostile)
        assert info.value.field == "path"


@SETTINGS
@given(source=json_values, kind=st.sampled_from(["environment_id", "executable", "certificate"]))
def test_arbitrary_aws_executable_and_certificate_sources_are_config_errors_or_valid(
    source: Any, kind: str
) -> None:
    credentials = {
        "type": "external_account",
        "audience": "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/"
        "providers/q",
        "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
        "credential_source": {kind: source}
        if kind != "environment_id"
        else {"environment_id": source, "regional_cred_verification_url": "https://sts.x"},
    }
    error = _config_error(lambda: goth_actors.WorkloadIdentity(credentials))
    if error is not None:
        assert error.field.startswith("credentials.credential_source")


@SETTINGS
@given(credentials=json_values)
def test_arbitrary_values_as_workforce_user_credentials_are_config_errors(credentials: Any) -> None:
    with pytest.raises(ConfigError) as info:
        goth_actors.WorkforceUser(credentials)
    assert info.value.field.startswith("credentials")


PASSWORD = "hunter2-password"
_AWS = {
    "environment_id": "aws1",
    "regional_cred_verification_url": (
        "https://sts.{region}.amazonaws.com?Action=GetCallerIdentity&Version=2011-06-15"
    ),
}


def _read_from(credential_source: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "external_account",
        "audience": "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/"
        "providers/p",
        "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
        "credential_source": credential_source,
    }


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (
            lambda: source_from_credentials(
                _read_from({"url": f"https://ci:{PASSWORD}@ci.example/token"})
            ),
            "credentials.credential_source.url",
        ),
        (lambda: Metadata(url=f"http://md:{PASSWORD}@127.0.0.1:9"), "url"),
        (
            lambda: source_from_credentials(
                _read_from({**_AWS, "url": f"http://aws:{PASSWORD}@169.254.169.254/creds"})
            ),
            "credentials.credential_source.url",
        ),
        (
            lambda: source_from_credentials(
                _read_from({**_AWS, "region_url": f"http://:{PASSWORD}@169.254.169.254/az"})
            ),
            "credentials.credential_source.region_url",
        ),
    ],
    ids=["credential_source.url", "Metadata(url=)", "aws url", "aws region_url"],
)
def test_a_url_a_token_is_read_from_may_not_carry_a_password(
    build: Callable[[], object], field: str
) -> None:
    # It would show in the source's repr, in every error's message and url.
    error = _config_error(build)
    assert error is not None
    assert error.field == field
    assert "password" in str(error)
    assert PASSWORD not in str(error)


def test_a_password_in_a_url_never_reaches_a_message() -> None:
    assert without_query(f"https://u:{PASSWORD}@x.test:8443/a?b=1#f") == ("https://x.test:8443/a")

    def echoing_client(**request: Any) -> HttpResponse:
        raise requests.ConnectionError(f"cannot reach {request['url']}")

    # GCE_METADATA_HOST is the environment's: a password there is not refused, only hidden.
    environ = {"GCE_METADATA_HOST": f"md:{PASSWORD}@127.0.0.1:9"}
    with pytest.raises(TransportError) as info:
        Token.fetch(Metadata(), http_client=echoing_client, environ=environ)
    assert PASSWORD not in _whole_chain(info.value) + str(info.value.url)

    def answering_503(**request: Any) -> HttpResponse:
        return HttpResponse(503, {}, f"{request['url']} is down")

    with pytest.raises(TokenEndpointError) as answered:
        Token.fetch(Metadata(), http_client=answering_503, environ=environ)
    assert PASSWORD not in _whole_chain(answered.value) + str(answered.value.url)
    assert PASSWORD not in answered.value.body


def test_a_prepared_request_shows_its_url_without_credentials_query_or_fragment() -> None:
    from goth_actors._protocol import Exchange

    with_password = Exchange(
        method="GET",
        url=f"https://u:{PASSWORD}@x.test/t?key=1#f",
        headers={},
        body=b"",
        kind="oauth",
    )
    assert with_password.where == "https://x.test/t"
    assert PASSWORD in with_password.secrets
    plain = Exchange(method="GET", url="https://x.test/a@b?k=1", headers={}, body=b"", kind="oauth")
    assert plain.where == "https://x.test/a@b"
    assert plain.secrets == ()
    from goth_actors._protocol.redact import url_password

    assert url_password("https://x.test/no/user/information") == ()


@pytest.mark.parametrize("at", ["\uff20", "\ufe6b"], ids=["fullwidth", "small"])
def test_a_password_behind_a_look_alike_at_sign_never_reaches_a_message(at: str) -> None:
    # urlsplit refuses such a host with a ValueError that quotes it, password and all.
    from goth_actors._protocol.redact import url_password

    url = f"http://md:{PASSWORD}{at}127.0.0.1/computeMetadata/v1/x"
    assert PASSWORD in url_password(url)
    with pytest.raises(ValueError, match="not a valid URL") as raised:
        without_query(url)
    assert PASSWORD not in str(raised.value)
    error = _config_error(lambda: Metadata(url=f"http://md:{PASSWORD}{at}127.0.0.1"))
    assert error is not None
    assert error.field == "url"
    assert PASSWORD not in str(error)
    with pytest.raises(ConfigError) as fetched:  # from the environment: refused, never quoted
        Token.fetch(Metadata(), environ={"GCE_METADATA_HOST": f"md:{PASSWORD}{at}127.0.0.1"})
    assert fetched.value.field == "GCE_METADATA_HOST"
    assert PASSWORD not in _whole_chain(fetched.value)
