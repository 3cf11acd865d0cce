"""Hostile input: whatever the credentials, options or names, a clear error naming the field.

Property tests (hypothesis) throw arbitrary JSON-like values and damaged keys at the sources;
each must raise ConfigError (a ValueError) naming a field, and never echo key material.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import goth_actors
from goth_actors import (
    ConfigError,
    Metadata,
    RefreshToken,
    ServerNotFound,
    ServiceAccount,
    source_from_credentials,
)
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
