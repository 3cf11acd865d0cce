"""MkDocs hooks for the site: pages that are repository files, with their links made pages.

The front page is README.md itself, the changelog CHANGELOG.md and the benchmarks page
includes benchmarks/README.md: a page holding the line ``<!-- include: PATH -->`` gets the
file's text in its place. Those files link to files of the repository (``docs/supervision.md``,
``examples/x.py``, ``CHANGELOG.md``, ``benchmarks/README.md``); on the site each is a page, and
this rewrites every such link, in any page, to its page before MkDocs checks the links, so that
a link to a file that is no page still fails the strict build.
"""

from __future__ import annotations

import re
import zlib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
INCLUDE = re.compile(
    r"^<!-- include: (?P<path>[\w./-]+)(?:#(?P<section>[^>]+?))? -->$", re.MULTILINE
)
LINK = re.compile(r"\]\((?:\.\./)*(?P<path>(?:docs|examples|benchmarks)/[^)#\s]+|CHANGELOG\.md)\)")


def site_path(path: str) -> str:
    """The page (relative to the docs folder) that stands for a repository path on the site."""
    if path == "CHANGELOG.md":
        return "changelog.md"
    if path == "benchmarks/README.md":
        return "benchmarks.md#how-each-figure-is-measured"
    if path.startswith("examples/") and path.endswith(".py"):
        return "examples.md#" + path.removeprefix("examples/").removesuffix(".py").replace("_", "-")
    return path.removeprefix("docs/")


def rewrite_links(markdown: str, page_path: str) -> str:
    """The repository links of a page (at ``page_path`` in the docs folder) made site links."""
    up = "../" * page_path.count("/")
    return LINK.sub(lambda m: f"]({up}{site_path(m.group('path'))})", markdown)


HEADING = re.compile(r"(?P<level>#{1,6}) +(?P<title>.*?)\s*")
FENCE = re.compile(r" {0,3}(?P<fence>`{3,}|~{3,})")


def headings(lines: list[str]) -> list[tuple[int, int, str]]:
    """The Markdown headings among ``lines``: (index, level, title), fenced code skipped.

    A heading is ``#`` to ``######`` then a space; a line in a fenced code block (a Python
    comment, a shell prompt) is none.
    """
    found: list[tuple[int, int, str]] = []
    fence = ""
    for i, line in enumerate(lines):
        opening = FENCE.match(line)
        if fence:
            if line.strip().startswith(fence) and not line.strip().strip(fence[0]):
                fence = ""
        elif opening is not None:
            fence = opening.group("fence")
        elif (match := HEADING.fullmatch(line)) is not None:
            found.append((i, len(match.group("level")), match.group("title")))
    return found


def section(text: str, heading: str) -> str:
    """The body of the section of ``text`` under the Markdown heading ``heading``.

    From the line after the heading to the next heading of the same level or higher (see
    `headings`).

    Raises:
        LookupError: No such heading: the page would silently lose its text.
    """
    lines = text.splitlines()
    found = headings(lines)
    for n, (i, level, title) in enumerate(found):
        if title == heading:
            end = next((j for j, deeper, _ in found[n + 1 :] if deeper <= level), len(lines))
            return "\n".join(lines[i + 1 : end]).strip() + "\n"
    raise LookupError(f"no heading {heading!r}")


def include(markdown: str) -> str:
    """Each ``<!-- include: PATH -->`` line replaced by the text of the repository's file.

    ``<!-- include: PATH#Heading -->`` includes only the body of that section.
    """

    def text(match: re.Match[str]) -> str:
        content = (ROOT / match.group("path")).read_text(encoding="utf-8")
        heading = match.group("section")
        return content if heading is None else section(content, heading)

    return INCLUDE.sub(text, markdown)


EXAMPLES = "<!-- examples -->"


def examples() -> str:
    """Every program of ``examples/``: a heading with its anchor, and its source."""
    parts = []
    for path in sorted((ROOT / "examples").glob("*.py")):
        if path.name.startswith("_"):
            continue
        anchor = path.stem.replace("_", "-")
        source = path.read_text(encoding="utf-8").rstrip()
        parts.append(f"## `{path.name}` {{#{anchor}}}\n\n```python\n{source}\n```\n")
    return "\n".join(parts)


def on_page_markdown(markdown: str, page: Any, **kwargs: Any) -> str:
    """Includes the repository files a page names, and makes repository links site links."""
    if EXAMPLES in markdown:
        markdown = markdown.replace(EXAMPLES, examples())
    return rewrite_links(include(markdown), page.file.src_uri)


PRIVATE_TITLE = re.compile(r' title="goth_actors(?:\.\w+)*?\._[a-z]\w*[^"]*"')
PRIVATE_ENTRY = re.compile(r"^goth_actors(?:\.\w+)*?\._[a-z]")


def on_post_page(output: str, **kwargs: Any) -> str:
    """Drops the hover titles that name a private module (a signature's private names)."""
    return PRIVATE_TITLE.sub("", output)


def on_post_build(config: Any, **kwargs: Any) -> None:
    """Drops from the objects inventory the entries under private modules.

    mkdocstrings registers each object under its canonical path too
    (``goth_actors._protocol.token.Token`` beside ``goth_actors.Token``); only the public
    paths are for other sites to link to.
    """
    path = Path(config["site_dir"]) / "objects.inv"
    if not path.exists():
        return
    head, _, body = path.read_bytes().partition(b"zlib.\n")
    lines = zlib.decompress(body).decode("utf-8").splitlines(keepends=True)
    kept = "".join(line for line in lines if not PRIVATE_ENTRY.match(line))
    path.write_bytes(head + b"zlib.\n" + zlib.compress(kept.encode("utf-8"), 9))
