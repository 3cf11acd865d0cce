"""The documentation site: every public name rendered, every guide example run, pictures drawn.

The site is built by ``uv run mkdocs build --strict`` (``.ci/run`` does it too); the slow tests
here build it into a temporary folder and read what it rendered.
"""

from __future__ import annotations

import ast
import html
import importlib
import importlib.util
import os
import re
import subprocess
import sys
import tomllib
import zlib
from pathlib import Path
from types import ModuleType
from typing import cast

import pykka
import pytest

import goth_actors
from goth_actors import RefreshToken
from goth_actors.otp import which_children
from goth_actors.testing import GoogleEmulator

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
GUIDES = sorted((DOCS / "guides").glob("*.md"))
PAGES = [*GUIDES, DOCS / "supervision.md"]
"""The hand-written pages that document the public API: they name no private module."""
SNIPPETS = sorted(p for p in (DOCS / "snippets").glob("*.py") if not p.name.startswith("_"))
PUBLIC_MODULES = (
    "goth_actors",
    "goth_actors.otp",
    "goth_actors.testing",
    "goth_actors.integrations",
    "goth_actors.integrations.aiohttp",
    "goth_actors.integrations.google_auth",
    "goth_actors.integrations.grpc",
    "goth_actors.integrations.httpx",
    "goth_actors.integrations.opentelemetry",
    "goth_actors.integrations.requests",
)

PRIVATE_PATH = re.compile(r"\bgoth_actors(?:\.\w+)*\._[a-z]\w*")
SPHINX_ROLE = re.compile(r":(?:py:)?(?:class|meth|func|mod|attr|data|exc|obj):`")
EXAMPLE_SECTION = re.compile(r"^\s*Example:\s*$", re.MULTILINE)
REST_LITERAL = re.compile(r"::$", re.MULTILINE)


def _load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module  # dataclasses look their module up
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[path.stem]
    return module


def _directives() -> set[str]:
    """Every object the reference pages render (``::: goth_actors.fetch``)."""
    found: set[str] = set()
    for page in (DOCS / "reference").glob("*.md"):
        found.update(re.findall(r"^::: (\S+)$", page.read_text(encoding="utf-8"), re.MULTILINE))
    return found


@pytest.mark.parametrize("module_name", PUBLIC_MODULES)
def test_every_public_name_has_an_entry_in_the_reference(module_name: str) -> None:
    module = importlib.import_module(module_name)
    missing = {f"{module_name}.{name}" for name in module.__all__} - _directives()
    assert not missing, f"add to docs/reference/: {sorted(missing)}"


def test_the_reference_renders_no_private_module() -> None:
    assert not [d for d in _directives() if PRIVATE_PATH.search(d)]


@pytest.mark.parametrize("guide", GUIDES, ids=[g.stem for g in GUIDES])
def test_each_guide_shows_examples_the_tests_run(guide: Path) -> None:
    text = guide.read_text(encoding="utf-8")
    included = re.findall(r'--8<-- "((?:docs/snippets|examples)/[\w.]+\.py)(?::\w+)?"', text)
    assert included, f"{guide.name} includes no example program"
    for path in included:
        assert (ROOT / path).is_file()


@pytest.mark.slow  # each guide's program is a process of its own
@pytest.mark.parametrize("snippet", SNIPPETS, ids=[path.stem for path in SNIPPETS])
def test_the_guide_examples_run_against_the_emulator(snippet: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GOOGLE_", "GCE_"))}
    bin_dir = str(Path(sys.executable).parent)  # where `goth-actors` is installed
    env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")
    result = subprocess.run(
        [sys.executable, str(snippet)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
        cwd=snippet.parent,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip()
    assert "Traceback" not in result.stderr
    for token_prefix in ("ya29.", "eyJ"):  # the examples print tokens' reprs, never tokens
        assert token_prefix not in result.stdout


def _docstrings() -> list[tuple[str, str]]:
    """Every docstring of the package: (where, text)."""
    found = []
    for path in sorted((ROOT / "goth_actors").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                docstring = ast.get_docstring(node)
                if docstring:
                    where = f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', 1)}"
                    found.append((where, docstring))
    return found


def test_no_docstring_holds_a_sphinx_role() -> None:
    offenders = [where for where, docstring in _docstrings() if SPHINX_ROLE.search(docstring)]
    assert not offenders, "write [`Name`][goth_actors.Name] or `Name`: " + ", ".join(offenders)


def test_no_docstring_holds_a_singular_example_section_or_a_rest_literal_block() -> None:
    # griffe reads "Example:" as an admonition, not as examples; Markdown has no "::" blocks.
    offenders = [
        where
        for where, docstring in _docstrings()
        if EXAMPLE_SECTION.search(docstring) or REST_LITERAL.search(docstring)
    ]
    assert not offenders, "write Examples:, and fenced or indented code: " + ", ".join(offenders)


def test_no_module_of_the_package_is_excused_from_the_docstring_rules() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    ignores = config["tool"]["ruff"]["lint"]["per-file-ignores"]
    excused = [
        path
        for path, rules in ignores.items()
        if path.startswith("goth_actors") and any(rule.startswith("D") for rule in rules)
    ]
    assert not excused, "every public name renders from its docstring: keep ruff's D rules"


@pytest.mark.parametrize("page", PAGES, ids=[p.stem for p in PAGES])
def test_the_guides_name_no_private_module(page: Path) -> None:
    found = PRIVATE_PATH.findall(page.read_text(encoding="utf-8"))
    assert not found, f"{page.relative_to(ROOT)} names private modules: {found}"


def test_every_chart_figure_is_the_readmes() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    charts = _load(DOCS / "benchmark_charts.py")
    for chart in charts.CHARTS:
        assert all(value > 0 for value in chart.values())
        for bar in chart.bars:
            assert bar.source in readme, f"{chart.name}: {bar.source!r} is not in README.md"


@pytest.mark.parametrize(
    ("text", "unit", "value"),
    [
        ("99 ns", "ns", 99),
        ("4.5 µs", "ns", 4_500),
        ("max 1.5 ms", "µs", 1_500),
        ("**2.4 ms**", "ms", 2.4),
        ("9.7 / 9.6 / 9.3 M/s", "M/s", 9.3),
        ("1,496 requests", "", 1_496),
        ("**1** token request", "", 1),
        ("a goth_actors server per process: 16", "", 16),
        ("2 servers", "", 2),
    ],
)
def test_a_chart_reads_each_value_from_its_readme_text(text: str, unit: str, value: float) -> None:
    assert _load(DOCS / "benchmark_charts.py").figure(text, unit) == value


@pytest.mark.parametrize(("text", "unit"), [("no figure", "ms"), ("3 M/s", "ms"), ("3 ms", "")])
def test_a_chart_text_without_a_figure_in_its_unit_is_refused(text: str, unit: str) -> None:
    with pytest.raises(ValueError, match=re.escape(repr(text))):
        _load(DOCS / "benchmark_charts.py").figure(text, unit)


@pytest.mark.slow  # draws every chart with matplotlib
def test_the_committed_charts_are_what_the_script_draws(tmp_path: Path) -> None:
    charts = _load(DOCS / "benchmark_charts.py")
    assert charts.main([str(tmp_path)]) == 0
    for chart in charts.CHARTS:
        drawn = (tmp_path / f"{chart.name}.svg").read_bytes()
        committed = (DOCS / "images" / f"{chart.name}.svg").read_bytes()
        assert drawn == committed, f"run: uv run python docs/benchmark_charts.py ({chart.name})"


def test_an_included_section_that_is_gone_fails_the_build() -> None:
    hooks = _load(DOCS / "hooks.py")
    text = "# A\n\nintro\n\n## B\n\nbody\n\n### B.1\n\nmore\n\n## C\n\nrest\n"
    assert hooks.section(text, "B") == "body\n\n### B.1\n\nmore\n"
    with pytest.raises(LookupError):
        hooks.section(text, "D")


def test_a_hash_line_in_fenced_code_is_no_heading_and_a_heading_needs_a_space() -> None:
    hooks = _load(DOCS / "hooks.py")
    text = (
        "## B\n\n```python\n# a comment\n```\n\n~~~~\n## shell\n~~~\n~~~~\n\n"
        "#hashtag\n\n## C\n\nrest\n"
    )
    body = hooks.section(text, "B")
    assert body == "```python\n# a comment\n```\n\n~~~~\n## shell\n~~~\n~~~~\n\n#hashtag\n"
    with pytest.raises(LookupError):
        hooks.section(text, "shell")


def test_repository_links_become_the_sites_pages() -> None:
    hooks = _load(DOCS / "hooks.py")
    markdown = (
        "[a](docs/supervision.md) [b](examples/fetch_async.py) [c](CHANGELOG.md) "
        "[d](benchmarks/README.md) [e](https://example.org/docs/x.md)"
    )
    assert hooks.rewrite_links(markdown, "index.md") == (
        "[a](supervision.md) [b](examples.md#fetch-async) [c](changelog.md) "
        "[d](benchmarks.md#how-each-figure-is-measured) [e](https://example.org/docs/x.md)"
    )
    assert hooks.rewrite_links("[x](../../examples/id_token.py)", "guides/security.md") == (
        "[x](../examples.md#id-token)"
    )


def _visible_text(page: Path) -> str:
    text = page.read_text(encoding="utf-8")
    text = re.sub(r"<(script|style)\b.*?</\1>", " ", text, flags=re.DOTALL)
    return html.unescape(re.sub(r"<[^>]+>", " ", text))


EXTERNAL_RESOURCE = re.compile(
    r'<(?:script|img|iframe)\b[^>]*\bsrc="(?:https?:)?//[^"]*"'
    r'|<link\b[^>]*\bhref="(?:https?:)?//[^"]*"'
)
"""What a page would make the browser fetch from another host (links to read are fine)."""


def _inventory(site: Path) -> set[str]:
    head, _, body = (site / "objects.inv").read_bytes().partition(b"zlib.\n")
    assert head.startswith(b"# Sphinx inventory version 2")
    return {line.split(" ", 1)[0] for line in zlib.decompress(body).decode().splitlines()}


@pytest.mark.slow
def test_the_site_builds_strictly_and_renders_every_public_name(tmp_path: Path) -> None:
    site = tmp_path / "site"
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert result.returncode == 0, result.stderr
    inventory = _inventory(site)
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        missing = {f"{module_name}.{n}" for n in module.__all__ if n != "__version__"} - inventory
        assert not missing, f"not rendered: {sorted(missing)}"
    assert not [name for name in inventory if PRIVATE_PATH.match(name)]
    pages = [*(site / "reference").glob("*.html"), *(site / "guides").glob("*.html")]
    for page in [*pages, site / "supervision.html"]:
        text = _visible_text(page)
        assert not PRIVATE_PATH.search(text), f"{page.name} names a private module"
        assert not SPHINX_ROLE.search(text), f"{page.name} shows a Sphinx role"
        assert 'title="goth_actors._' not in page.read_text(encoding="utf-8")
    assert (site / "images" / "timeline.svg").is_file()
    for page in site.rglob("*.html"):
        fetched = EXTERNAL_RESOURCE.findall(page.read_text(encoding="utf-8"))
        assert not fetched, f"{page.relative_to(site)} makes the browser ask {fetched}"


@pytest.mark.slow
def test_the_timeline_is_drawn_from_a_fresh_demo_run(tmp_path: Path) -> None:
    output = tmp_path / "timeline.svg"
    result = subprocess.run(
        [sys.executable, str(DOCS / "timeline.py"), "--duration", "5", "--output", str(output)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    drawing = output.read_text(encoding="utf-8")
    for label in ("token 1", "crash: retries exhausted", "restarted, token kept", "0 errors"):
        assert label in drawing


@pytest.mark.usefixtures("shutdown_servers")
def test_the_readmes_emulator_example_runs_as_written() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## The emulator, for your own tests", 1)[1].split("\n## ", 1)[0]
    example = section.split("```python\n", 1)[1].split("```", 1)[0]
    assert "fail_next(2, 503" in example  # faults armed after a token, then fetch: served
    exec(compile(example, "README.md", "exec"), {"__name__": "readme_example"})


def test_the_troubleshooting_guide_names_every_public_error() -> None:
    page = (DOCS / "guides" / "troubleshooting.md").read_text(encoding="utf-8")
    errors = {
        name
        for module_name in PUBLIC_MODULES
        for name in importlib.import_module(module_name).__all__
        if isinstance(value := getattr(importlib.import_module(module_name), name), type)
        and issubclass(value, BaseException)
    }
    assert errors >= {"GothError", "TokenError", "LinkExit"}  # the search finds them
    assert not {name for name in errors if f"`{name}`" not in page}


def _readme_python_block(heading: str) -> str:
    """The first python block of the README section under ``heading``."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split(f"\n{heading}\n", 1)[1]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


@pytest.mark.usefixtures("shutdown_servers")
def test_the_readmes_supervision_and_per_tenant_examples_run_with_their_names_filled_in(
    emulator: GoogleEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The two fragments leave ``key``, ``MyCache`` and ``source`` to the reader: given them,
    the tree starts with its three children and a tenant's server comes and goes."""
    monkeypatch.setenv("GCE_METADATA_HOST", emulator.metadata_host)

    class MyCache(pykka.ThreadingActor):
        def __init__(self, arg: str) -> None:
            super().__init__()
            self.arg = arg

    tree = _readme_python_block("## Supervision: `goth_actors.otp`, for any Pykka actor")
    names: dict[str, object] = {"key": emulator.service_account(), "MyCache": MyCache}
    exec(compile(tree, "README.md", "exec"), names)
    supervisor = names["supervisor"]
    assert isinstance(supervisor, pykka.ActorRef)
    try:
        ids = {child.id for child in which_children(supervisor)}
        assert ids == {"pubsub", "storage", "cache"}
        assert goth_actors.fetch("pubsub", timeout=5.0).token
        assert goth_actors.fetch("storage", timeout=5.0).token
    finally:
        supervisor.stop()

    tenant = _readme_python_block("### A token server per tenant")
    names = {"goth_actors": goth_actors, "source": RefreshToken(emulator.authorized_user())}
    code = compile(tenant + 'goth_actors.fetch(("tenant", 42))\n', "README.md", "exec")
    try:
        with pytest.raises(goth_actors.ServerNotFound):  # its last line's promise
            exec(code, names)
    finally:
        cast(pykka.ActorRef, names["tenants"]).stop()
