"""Reading files that another party may have written: credential files and subject tokens.

Every file goth_actors reads for a credential (a key file, gcloud's files, a subject token, an
executable's output, a certificate configuration) is read here, with the same guards: opened
without blocking (a FIFO with no writer cannot hang the caller), regular files only (not
``/dev/zero``), at most `MAX_FILE_BYTES`, strict UTF-8, and JSON no deeper than
`MAX_JSON_DEPTH`. Problems come back as values, not exceptions, so that callers raise
their own error (``ConfigError`` at construction, ``TokenError`` at a fetch) outside any
``except`` block: no error the library raises carries the original exception, whose attributes
may hold the file's content (``JSONDecodeError.doc`` is the whole document).
"""

from __future__ import annotations

import json
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "MAX_FILE_BYTES",
    "MAX_JSON_DEPTH",
    "NOT_JSON",
    "FileProblem",
    "decode_utf8",
    "parse_json",
    "read_json_object",
    "read_text",
    "shown_path",
]

MAX_FILE_BYTES = 1024 * 1024
"""Files larger than this (1 MiB) are refused, not read into memory."""

MAX_JSON_DEPTH = 64
"""JSON nested deeper than this is refused before it is parsed (no ``RecursionError``)."""


class _NotJson:
    def __repr__(self) -> str:
        return "NOT_JSON"


NOT_JSON: Any = _NotJson()
"""What `parse_json` returns for text that is not JSON, or nested too deep."""

_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_INNERMOST = re.compile(r"\[\]|\{\}")


@dataclass(frozen=True, slots=True)
class FileProblem:
    """Why a file could not be used.

    Attributes:
        reason: A phrase to follow the file's name: ``"does not exist"``, ``"is not a regular
            file"``... It never quotes the file's content.
        transient: Whether reading again later may succeed (an I/O error, a file that is not
            there yet), as opposed to a file that is there but unusable.
    """

    reason: str
    transient: bool


def read_text(path: str | os.PathLike[str]) -> str | FileProblem:
    """The file's text, or the `FileProblem` that stops it being read.

    Examples:
        >>> read_text("/dev/zero")
        FileProblem(reason='is not a regular file', transient=False)
    """
    raw: bytes | None = None
    problem: FileProblem | None = None
    try:
        # O_NONBLOCK: opening a FIFO with no writer must not block for ever.
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        problem = FileProblem("does not exist", transient=True)
    except OSError as exc:
        problem = FileProblem(f"cannot be opened: {exc.strerror or type(exc).__name__}", True)
    else:
        try:
            if not stat.S_ISREG(os.fstat(descriptor).st_mode):
                problem = FileProblem("is not a regular file", transient=False)
            else:
                with open(descriptor, "rb", closefd=False) as handle:
                    raw = handle.read(MAX_FILE_BYTES + 1)
        except OSError as exc:
            problem = FileProblem(f"cannot be read: {exc.strerror or type(exc).__name__}", True)
        finally:
            os.close(descriptor)
    if problem is not None:
        return problem
    assert raw is not None
    if len(raw) > MAX_FILE_BYTES:
        return FileProblem(f"is larger than {MAX_FILE_BYTES} bytes", transient=False)
    text = decode_utf8(raw)
    if text is None:
        return FileProblem("is not UTF-8 text", transient=False)
    return text


def decode_utf8(raw: bytes) -> str | None:
    """``raw`` decoded as strict UTF-8 (a leading BOM dropped), or ``None`` if it is not."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None


def parse_json(text: str, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """``text`` parsed as JSON, or `NOT_JSON`.

    `NOT_JSON` for invalid JSON, or nesting past ``max_depth``, which is checked before parsing
    (so never a ``RecursionError``).

    Examples:
        >>> parse_json('{"a": [1]}')
        {'a': [1]}
        >>> parse_json("[" * 100_000) is NOT_JSON
        True
    """
    if _too_deep(text, max_depth):
        return NOT_JSON
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        pass  # returned below, outside the except block: the error's .doc is the text
    return NOT_JSON


def _too_deep(text: str, max_depth: int) -> bool:
    if "[" not in text and "{" not in text:
        return False
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    for _ in range(max_depth):
        if not brackets:
            return False
        shorter = _INNERMOST.sub("", brackets)
        if shorter == brackets:
            return False  # unbalanced: not JSON, which json.loads will say
        brackets = shorter
    return bool(brackets)


def read_json_object(path: str | os.PathLike[str]) -> dict[str, Any] | FileProblem:
    """The file's JSON object, or the `FileProblem` that stops it being read."""
    text = read_text(path)
    if isinstance(text, FileProblem):
        return text
    data = parse_json(text)
    if data is NOT_JSON:
        return FileProblem(
            f"is not valid JSON (or is nested deeper than {MAX_JSON_DEPTH} levels)", False
        )
    if not isinstance(data, dict):
        return FileProblem("does not hold a JSON object", transient=False)
    return data


def shown_path(path: str | os.PathLike[str]) -> str:
    """A path fit to quote in a message: ``repr`` escapes any control character in it."""
    return repr(str(Path(path)))[:300]
