"""Where a workload identity's subject token comes from: the ``credential_source``.

`credential_source` validates the ``credential_source`` of an ``external_account`` file
at construction and picks its kind: a file or a URL (here), AWS (``environment_id``,
`aws`), an executable (`executable`)
or an X.509 certificate (`certificate`). Each reads the token at
each fetch (`SubjectSource`). A file is read with the
guards of every credential file (no blocking open, regular files only, at most 1 MiB), never
quoted in an error; a URL is read through the exchange.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Literal

from goth_actors._base import ConfigError
from goth_actors._protocol.answers import unusable_answer
from goth_actors._protocol.aws import AWS_KEYS, aws_source
from goth_actors._protocol.certificate import certificate_source
from goth_actors._protocol.errors import TokenError, TransportError
from goth_actors._protocol.exchange import Exchange
from goth_actors._protocol.executable import executable_source
from goth_actors._protocol.files import NOT_JSON, FileProblem, parse_json, read_text, shown_path
from goth_actors._protocol.redact import without_query
from goth_actors._protocol.subject import Subject, SubjectContext, SubjectSource
from goth_actors._protocol.token import Exchanger
from goth_actors._protocol.validate import check_url

__all__ = ["SubjectTokenSource", "credential_source"]

_SOURCE_KEYS = ("file", "url", "headers", "format")


@dataclass(frozen=True, slots=True)
class SubjectTokenSource:
    """Where the subject token comes from: a validated ``credential_source``."""

    file: str | None
    url: str | None
    headers: Mapping[str, str] = field(repr=False)  # may carry a CI system's bearer token
    format: Literal["text", "json"]
    field_name: str | None

    def describe(self) -> str:
        if self.file is not None:
            where = f"file {self.file!r}"
        else:
            assert self.url is not None
            where = f"url {without_query(self.url)!r}"
        return where + (f" (json {self.field_name!r})" if self.format == "json" else "")

    def read(self, exchanger: Exchanger, context: SubjectContext) -> Subject:  # noqa: ARG002
        """Reads the subject token now: from the file, or from the URL through ``exchanger``."""
        return Subject(self._token(exchanger))

    def _token(self, exchanger: Exchanger) -> str:
        source = self
        if source.file is not None:
            return _subject_from_file(source)
        assert source.url is not None
        exchange = Exchange(
            method="GET",
            url=source.url,
            headers=source.headers,
            body=b"",
            kind="oauth",
            secrets=tuple(source.headers.values()),
        )
        where = without_query(source.url)
        if source.format == "json":
            data = exchanger.json(exchange)
            assert source.field_name is not None
            value = data.get(source.field_name)
            if not isinstance(value, str) or not value.strip():
                raise unusable_answer(
                    where, f"answered without a subject token string in {source.field_name!r}", data
                )
            return value.strip()
        text = exchanger.text(exchange).strip()
        if not text:
            raise unusable_answer(where, "answered 200 with an empty subject token", None)
        return text


def _subject_from_file(source: SubjectTokenSource) -> str:
    assert source.file is not None
    path = source.file
    text = read_text(path)
    if isinstance(text, FileProblem):
        if text.transient:
            raise TransportError(
                f"the subject token file {shown_path(path)} {text.reason}",
                url=Path(path).absolute().as_uri(),
            )
        raise _file_error(path, text.reason)
    if source.format == "json":
        data = parse_json(text)
        if data is NOT_JSON:
            raise _file_error(path, "is not JSON, but the format type is 'json'")
        value = data.get(source.field_name) if isinstance(data, dict) else None
        if not isinstance(value, str) or not value.strip():
            raise _file_error(path, f"has no subject token string in {source.field_name!r}")
        return value.strip()
    if not text.strip():
        raise _file_error(path, "is empty")
    return text.strip()


def _file_error(path: str, problem: str) -> TokenError:
    # Never quotes the file's content: it is, or is near, a credential.
    return TokenError(f"the subject token file {shown_path(path)} {problem}", retryable=False)


def credential_source(value: object) -> SubjectSource:
    """Validates ``credentials.credential_source``; ``ConfigError`` names the bad key."""
    name = "credentials.credential_source"
    if value is None:
        raise ConfigError(name, "is missing from the credentials")
    if not isinstance(value, Mapping):
        raise ConfigError(name, f"must be a mapping, got {type(value).__name__}")
    kinds = [k for k in ("environment_id", "executable", "certificate") if k in value]
    if "file" in value or ("url" in value and "environment_id" not in value):
        kinds.append("file or url")
    if len(kinds) > 1:
        raise ConfigError(name, f"names more than one kind of source: {', '.join(kinds)}")
    if "environment_id" in value:
        return aws_source(value, name)
    for key, build in (("executable", executable_source), ("certificate", certificate_source)):
        if key in value:
            if len(value) > 1:
                raise ConfigError(name, f"has keys besides {key!r}")
            return build(value[key], f"{name}.{key}")
    for key in value:
        if key in AWS_KEYS and key not in _SOURCE_KEYS:
            raise ConfigError(
                f"{name}.{key}", "belongs to an AWS source, which needs environment_id"
            )
        if key not in _SOURCE_KEYS:
            raise ConfigError(
                name,
                f"has an unknown key {str(key)[:40]!r}; expected file, url, headers, format, "
                "environment_id (AWS), executable or certificate",
            )
    file, url = value.get("file"), value.get("url")
    if (file is None) == (url is None):
        raise ConfigError(name, "needs exactly one of 'file' and 'url'")
    if file is not None and (not isinstance(file, str) or not file.strip()):
        raise ConfigError(f"{name}.file", "must be a non-empty path string")
    if url is not None:
        check_url(url, f"{name}.url")
    headers = _headers(value.get("headers"), f"{name}.headers")
    if headers and file is not None:
        raise ConfigError(f"{name}.headers", "only apply to a 'url' credential source")
    kind, field_name = _format(value.get("format"), f"{name}.format")
    return SubjectTokenSource(file, url, MappingProxyType(headers), kind, field_name)


def _headers(value: object, name: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(
            name, f"must be a mapping of header names to values, got {type(value).__name__}"
        )
    headers: dict[str, str] = {}
    for key, item in value.items():
        if not isinstance(key, str) or not key or not key.isascii() or ":" in key:
            raise ConfigError(name, f"has a header name that is not valid: {str(key)[:40]!r}")
        if not isinstance(item, str) or "\n" in item or "\r" in item:
            # Never echo the value: it is usually a bearer token.
            raise ConfigError(f"{name}.{key}", "must be a one-line string")
        headers[key] = item
    return headers


def _format(value: object, name: str) -> tuple[Literal["text", "json"], str | None]:
    if value is None:
        return "text", None
    if not isinstance(value, Mapping):
        raise ConfigError(name, f"must be a mapping such as {{'type': 'text'}}, got {value!r:.40}")
    unknown = sorted(str(k)[:40] for k in value if k not in ("type", "subject_token_field_name"))
    if unknown:
        raise ConfigError(
            name, f"has unknown keys {unknown}; expected type, subject_token_field_name"
        )
    kind = value.get("type", "text")
    if kind not in ("text", "json"):
        shown = repr(kind)[:40]
        raise ConfigError(f"{name}.type", f"must be 'text' or 'json', got {shown}")
    field_name = value.get("subject_token_field_name")
    if field_name is not None and (not isinstance(field_name, str) or not field_name.strip()):
        raise ConfigError(f"{name}.subject_token_field_name", "must be a non-empty string")
    if kind == "json":
        if field_name is None:
            raise ConfigError(
                f"{name}.subject_token_field_name", "is required when the format type is 'json'"
            )
        return "json", field_name
    return "text", None
