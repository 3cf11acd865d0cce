"""The layout keeps its promises: two layers held apart, one API, options and errors once."""

from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect
import pkgutil
import re
import shutil
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pykka
import pytest

import goth_actors
import goth_actors.otp
from goth_actors import (
    AlreadyRegistered,
    GothError,
    ServerNotFound,
    cached,
    fetch,
    status,
    stop,
)
from goth_actors._options import ServerOptions
from goth_actors.otp import register, unregister, update_value

REPO = Path(__file__).resolve().parent.parent
TOKEN_SIDE = ("goth_actors._protocol", "goth_actors._api", "goth_actors._server", "requests", "jwt")


def _modules_after(statement: str) -> set[str]:
    code = f"import sys\n{statement}\nprint('\\n'.join(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    )
    return set(result.stdout.split())


@pytest.mark.slow
def test_importing_goth_actors_otp_loads_nothing_of_the_token_side() -> None:
    loaded = _modules_after("import goth_actors.otp")
    assert "goth_actors.otp._supervisor" in loaded
    assert not [m for m in loaded if m.startswith(TOKEN_SIDE)]
    assert "cryptography" not in loaded


@pytest.mark.slow
def test_importing_the_token_protocol_loads_no_pykka_and_no_otp() -> None:
    loaded = _modules_after("import goth_actors._protocol")
    assert "goth_actors._protocol.token" in loaded
    assert "pykka" not in loaded
    assert not [m for m in loaded if m.startswith("goth_actors.otp")]


def _lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [shutil.which("lint-imports") or "lint-imports", "--no-cache"],
        capture_output=True,
        text=True,
        check=False,
        cwd=root,
    )


# One import against each contract, in the module named, and the contract it breaks.
BREAKS = [
    ("otp/_timers.py", "import goth_actors._protocol", "goth_actors.otp knows nothing of tokens"),
    ("otp/_timers.py", "from goth_actors import fetch", "goth_actors.otp knows nothing of tokens"),
    ("_protocol/backoff.py", "import pykka", "the token protocol is pure"),
    ("_protocol/backoff.py", "import goth_actors.otp", "the token protocol is pure"),
    ("_protocol/backoff.py", "import goth_actors._table", "the token protocol is pure"),
    ("integrations/grpc.py", "from goth_actors._api import fetch", "the edges"),
    ("testing/_soak.py", "from goth_actors.otp._registry import whereis", "the edges"),
    ("_cli/token.py", "import goth_actors._protocol", "the edges"),
    ("_api.py", "import goth_actors.testing", "the server layer never imports the edges"),
    ("_server.py", "from goth_actors.otp._registry import whereis", "private modules"),
    ("_table.py", "import goth_actors._api", "no import cycles"),
    ("_protocol/token.py", "from goth_actors._protocol import adc", "no import cycles"),
]


@pytest.mark.slow
def test_the_import_contract_holds() -> None:
    result = _lint_imports(REPO)
    assert result.returncode == 0, result.stdout


@pytest.mark.slow
@pytest.mark.parametrize(("module", "statement", "contract"), BREAKS)
def test_the_import_contract_breaks_when_a_module_imports_against_it(
    tmp_path: Path, module: str, statement: str, contract: str
) -> None:
    shutil.copy(REPO / "pyproject.toml", tmp_path)
    shutil.copytree(REPO / "goth_actors", tmp_path / "goth_actors")
    path = tmp_path / "goth_actors" / module
    path.write_text(path.read_text() + f"\n{statement}\n")
    result = _lint_imports(tmp_path)
    assert result.returncode != 0
    summary = " ".join(result.stdout.split("Contracts:")[0].split())  # "<name> KEPT|BROKEN"...
    verdict = re.search(rf"{re.escape(contract)}.*? (KEPT|BROKEN)", summary)
    assert verdict is not None, summary
    assert verdict[1] == "BROKEN", summary


def _package_of(path: Path) -> str:
    """The package a module of the library belongs to (a package's ``__init__`` is its own)."""
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1])


def _owner(module: str, name: str) -> str:
    """The package that owns ``name`` imported from ``module``: a private name belongs to the
    package of its module; a private submodule to the package it is in."""
    as_path = REPO.joinpath(*module.split("."))
    if (
        as_path.joinpath(*name.split(".")).with_suffix(".py").exists()
        or (as_path / name / "__init__.py").exists()
    ):
        return module  # a submodule of the package ``module``
    if (as_path / "__init__.py").exists():
        return module  # a name defined in a package's __init__
    return module.rsplit(".", 1)[0]


def test_no_module_imports_a_private_name_from_outside_its_own_package() -> None:
    crossings = []
    for path in sorted((REPO / "goth_actors").rglob("*.py")):
        package = _package_of(path)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ImportFrom) or not (node.module or node.level):
                continue
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            if not module.startswith("goth_actors"):
                continue
            for alias in node.names:
                private = alias.name.startswith("_") and not alias.name.startswith("__")
                if private and _owner(module, alias.name) != package:
                    crossings.append(f"{path.relative_to(REPO)}: from {module} import {alias.name}")
    assert crossings == []


# ------------------------------------------------------------------- one namespace, two tables


def test_a_name_registered_to_a_plain_actor_is_no_token_server() -> None:
    ref = pykka.ThreadingActor.start()
    try:
        register("plain", ref)
        assert goth_actors.whereis("plain") is ref  # names are one namespace
        with pytest.raises(ServerNotFound):
            fetch("plain", timeout=0.1)
        update_value("plain", 5, ref=ref)  # the user's value slot is the user's
        with pytest.raises(ServerNotFound):
            fetch("plain", timeout=0.1)
        with pytest.raises(ServerNotFound):
            status("plain")
        with pytest.raises(ServerNotFound):
            stop("plain")
        assert cached("plain") is None
        with pytest.raises(AlreadyRegistered):  # not AlreadyStarted: no token server runs
            goth_actors.start_link(name="plain", source=goth_actors.Metadata())
        with pytest.raises(ServerNotFound):
            fetch("plain", timeout=0.1)  # and the failed start left nothing behind
    finally:
        ref.stop()
        unregister("plain")
        goth_actors.shutdown()


# ------------------------------------------------------------------------------- the public API


def test_every_public_name_resolves_and_is_listed() -> None:
    for name in goth_actors.__all__:
        assert getattr(goth_actors, name) is not None
    assert set(goth_actors.__all__) <= set(dir(goth_actors))
    for package in (goth_actors.otp, importlib.import_module("goth_actors._protocol")):
        for name in package.__all__:
            assert getattr(package, name) is not None


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'ManualClock'"):
        _ = goth_actors.ManualClock


def test_the_version_is_the_packages() -> None:
    assert goth_actors.__version__ == version("goth-actors")


def test_supervision_comes_from_goth_actors_otp_and_is_re_exported_for_goth_users() -> None:
    assert goth_actors.Supervisor is goth_actors.otp.Supervisor
    assert goth_actors.ChildSpec is goth_actors.otp.ChildSpec
    assert goth_actors.whereis is goth_actors.otp.whereis
    assert not hasattr(goth_actors, "StartChild")  # the runtime's messages live in otp only


# --------------------------------------------------------------------------- the options, once


def _options_of(function: object) -> dict[str, inspect.Parameter]:
    parameters = inspect.signature(function).parameters  # type: ignore[arg-type]
    return {name: p for name, p in parameters.items() if name != "supervisor"}


@pytest.mark.parametrize(
    "function", [goth_actors.start_link, goth_actors.child_spec, goth_actors.running]
)
def test_start_link_child_spec_and_running_spell_out_exactly_the_servers_options(
    function: object,
) -> None:
    fields = {f.name: f for f in dataclasses.fields(ServerOptions)}
    parameters = _options_of(function)
    assert list(parameters) == list(fields)
    for name, field in fields.items():
        parameter = parameters[name]
        assert parameter.kind is inspect.Parameter.KEYWORD_ONLY
        assert parameter.annotation == field.type, name
        if field.default is dataclasses.MISSING:
            assert parameter.default is inspect.Parameter.empty, name
        else:
            assert parameter.default == field.default, name


def _readme_options() -> dict[str, str]:
    text = (REPO / "README.md").read_text()
    section = text.split("## Options of `start_link`", 1)[1].split("\n## ", 1)[0]
    rows: dict[str, str] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 2 or not cells[0].startswith("`"):
            continue
        names = re.findall(r"`(\w+)`", cells[0])
        defaults = re.findall(r"`([^`]+)`", cells[1]) if cells[1] != "required" else []
        for index, name in enumerate(names):
            rows[name] = defaults[index] if index < len(defaults) else cells[1]
    return rows


def test_the_readme_lists_every_option_with_its_real_default() -> None:
    documented = _readme_options()
    for field in dataclasses.fields(ServerOptions):
        assert field.name in documented, f"README misses the option {field.name}"
        if field.default is dataclasses.MISSING:
            assert documented[field.name] == "required"
        else:
            assert ast.literal_eval(documented[field.name]) == field.default, field.name
    assert ast.literal_eval(documented["supervisor"]) is None


# ---------------------------------------------------------------------------- one error tree


def _library_modules() -> list[str]:
    names = ["goth_actors"]
    for info in pkgutil.walk_packages(goth_actors.__path__, "goth_actors."):
        names.append(info.name)
    return names


def test_every_exception_the_library_defines_is_a_goth_error() -> None:
    defined = []
    for name in _library_modules():
        module = importlib.import_module(name)
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, BaseException)
                and value.__module__ == name
            ):
                defined.append(value)
    assert len(defined) >= 15
    outside = [cls.__qualname__ for cls in defined if not issubclass(cls, GothError)]
    assert outside == []


def test_the_package_docstring_draws_every_public_error() -> None:
    doc = goth_actors.__doc__ or ""
    for name in goth_actors.__all__:
        value = getattr(goth_actors, name)
        if isinstance(value, type) and issubclass(value, BaseException):
            assert re.search(rf"\b{name}\b", doc), name


# The edges' own errors never reach a user (the CLI and serve answer them; the emulator's are
# its answers): they are GothErrors (above) but not part of the drawing.
EDGES = ("goth_actors.testing", "goth_actors._cli", "goth_actors._serve")


def _drawn_tree() -> dict[str, str | None]:
    """Each class the package docstring draws, with the class drawn as its parent."""
    drawn: dict[str, str | None] = {}
    path: list[str] = []
    for line in (goth_actors.__doc__ or "").splitlines():
        match = re.match(r"^    ([│├└─ ]*)([A-Z]\w+) ", line)
        if match is None or (path == [] and match[2] != "GothError"):
            continue
        depth = len(match[1]) // 4
        path = [*path[:depth], match[2]]
        drawn[match[2]] = path[-2] if depth else None
    return drawn


def test_the_package_docstring_draws_the_whole_tree_with_each_class_under_its_real_base() -> None:
    defined: dict[str, type] = {}
    for name in _library_modules():
        if name.startswith(EDGES):
            continue
        module = importlib.import_module(name)
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, GothError)
                and value.__module__ == name
            ):
                defined[value.__name__] = value
    drawn = _drawn_tree()
    assert sorted(drawn) == sorted(defined)
    for name, parent in drawn.items():
        if parent is not None:
            assert defined[parent] in defined[name].__bases__, f"{name} is drawn under {parent}"


@pytest.mark.parametrize("kind", [goth_actors.otp.Supervisor, goth_actors.otp.DynamicSupervisor])
def test_a_supervisors_start_and_its_actor_take_the_same_options(kind: type) -> None:
    start = inspect.signature(kind.start).parameters
    init = inspect.signature(kind.__init__).parameters
    wanted = {n: (p.kind, p.default) for n, p in start.items()}
    given = {n: (p.kind, p.default) for n, p in init.items() if n not in ("self", "_signal")}
    assert given == wanted


def test_the_servers_status_update_copies_every_status_field() -> None:
    # _set_status spells the fields out (dataclasses.replace costs twice as much, three times
    # per exchange): a field added to ServerStatus must be added there too.
    from goth_actors._server import TokenServer
    from goth_actors._status import ServerStatus

    source = inspect.getsource(TokenServer._set_status)
    for field in dataclasses.fields(ServerStatus):
        assert f"{field.name}=" in source, field.name
