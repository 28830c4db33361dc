"""The arrows between simtcp's parts, enforced: who may import whom (ARCHITECTURE.md).

Nothing is imported here: every module under ``simtcp/`` (and ``backends/``,
installed as ``simtcp.backends``) is parsed with :mod:`ast`, its imports are
resolved to module names, each module is put in a part by its name, and an
import from one part into another that the table below does not allow fails
the test with the file and line. The same table is drawn in ARCHITECTURE.md.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# part -> the parts it may import (itself always included). The sans-IO core
# (base, wire, core) never reaches a backend or a program; wire formats never
# reach the stack.
ALLOWED: dict[str, frozenset[str]] = {
    "base": frozenset({"base"}),
    "wire": frozenset({"base", "wire"}),
    "core": frozenset({"base", "wire", "core"}),
    "aio": frozenset({"base", "wire", "core", "aio"}),
    "drill": frozenset({"base", "wire", "core", "drill"}),
    "backends": frozenset({"base", "wire", "core", "aio", "backends"}),
    "programs": frozenset({"base", "wire", "core", "aio", "drill", "backends", "programs"}),
}

# Standard-library modules that would give the core a clock, a socket, a thread
# or the operating system's randomness (DESIGN.md, "The core's contract").
FORBIDDEN_IN_CORE = frozenset(
    {
        "asyncio",
        "multiprocessing",
        "os",
        "secrets",
        "selectors",
        "signal",
        "socket",
        "subprocess",
        "threading",
        "time",
        "uuid",
    }
)
SANS_IO_PARTS = frozenset({"base", "wire", "core"})
BASE_MODULES = frozenset({"simtcp.errors", "simtcp.time"})


def part_of(module: str) -> str | None:
    """The part a simtcp module belongs to, or None for a module outside simtcp."""
    if module == "backends" or module.startswith("backends."):
        return "backends"
    if module != "simtcp" and not module.startswith("simtcp."):
        return None
    if module in BASE_MODULES:
        return "base"
    second = module.split(".")[1] if "." in module else ""
    return {
        "wire": "wire",
        "aio": "aio",
        "drill": "drill",
        "backends": "backends",
        "programs": "programs",
        "__main__": "programs",
    }.get(second, "core")


@dataclass(frozen=True)
class ImportArrow:
    source: str
    target: str
    path: Path
    line: int


def module_files() -> dict[str, Path]:
    files: dict[str, Path] = {}
    for path in sorted((REPO / "simtcp").rglob("*.py")):
        relative = path.relative_to(REPO)
        if relative.parts[1] == "backends":  # the link to backends/, listed below
            continue
        files[_module_name(relative)] = path
    for path in sorted((REPO / "backends").rglob("*.py")):
        files[_module_name(Path("simtcp") / path.relative_to(REPO))] = path
    return files


def _module_name(relative: Path) -> str:
    parts = list(relative.with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(module: str, path: Path) -> list[ImportArrow]:
    tree = ast.parse(path.read_text(), filename=str(path))
    is_package = path.name == "__init__.py"
    arrows = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            arrows += [ImportArrow(module, alias.name, path, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(module, is_package, node.level, node.module)
            arrows.append(ImportArrow(module, base, path, node.lineno))
            # "from simtcp import backends" names a module, not an attribute
            arrows += [
                ImportArrow(module, f"{base}.{alias.name}", path, node.lineno)
                for alias in node.names
                if base in ("simtcp", "simtcp.programs", "simtcp.backends")
            ]
    return arrows


def _resolve(module: str, is_package: bool, level: int, name: str | None) -> str:
    if level == 0:
        return name or ""
    package = module.split(".") if is_package else module.split(".")[:-1]
    if level > 1:
        package = package[: -(level - 1)]
    return ".".join([*package, name] if name else package)


FILES = module_files()
ARROWS = [arrow for module, path in FILES.items() for arrow in imports_of(module, path)]


def test_every_module_has_a_part() -> None:
    assert len(FILES) > 60
    assert all(part_of(module) is not None for module in FILES)


def test_no_import_crosses_an_arrow_the_table_does_not_allow() -> None:
    wrong = []
    for arrow in ARROWS:
        source, target = part_of(arrow.source), part_of(arrow.target)
        if source is None or target is None:
            continue
        if target not in ALLOWED[source] | {source}:
            where = f"{arrow.path.relative_to(REPO)}:{arrow.line}"
            wrong.append(f"{where}: {arrow.source} ({source}) imports {arrow.target} ({target})")
    assert wrong == []


def test_nothing_imports_the_top_level_name_backends() -> None:
    wrong = [
        f"{arrow.path.relative_to(REPO)}:{arrow.line}: {arrow.target}"
        for arrow in ARROWS
        if arrow.target == "backends" or arrow.target.startswith("backends.")
    ]
    assert wrong == []


def test_the_sans_io_core_imports_no_clock_socket_thread_or_os() -> None:
    wrong = [
        f"{arrow.path.relative_to(REPO)}:{arrow.line}: {arrow.source} imports {arrow.target}"
        for arrow in ARROWS
        if part_of(arrow.source) in SANS_IO_PARTS
        and arrow.target.split(".")[0] in FORBIDDEN_IN_CORE
    ]
    assert wrong == []


def test_the_core_uses_only_seeded_random_generators() -> None:
    """``random.Random(seed)`` objects only: no module-level ``random.random()``."""
    wrong = []
    for module, path in FILES.items():
        if part_of(module) not in SANS_IO_PARTS:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "random"
                and node.attr != "Random"
            ):
                wrong.append(f"{path.relative_to(REPO)}:{node.lineno}: random.{node.attr}")
    assert wrong == []


@pytest.mark.parametrize(
    ("source", "target", "allowed"),
    [
        ("simtcp.stack", "simtcp.backends.sim", False),
        ("simtcp.wire.tcp", "simtcp.stack", False),
        ("simtcp.tcp.output", "simtcp.programs.transfer", False),
        ("simtcp.backends.sim", "simtcp.stack", True),
        ("simtcp.backends.sim", "simtcp.programs.cli", False),
        ("simtcp.programs.cli", "simtcp.backends.tap", True),
        ("simtcp.aio.driver", "simtcp.backends.aio_sim", False),
        ("simtcp.__main__", "simtcp.programs.cli", True),
        ("simtcp.ip6.input", "simtcp.wire.ipv6", True),
        ("simtcp.ip6.nd", "simtcp.backends.tap", False),
        ("simtcp.wire.icmpv6", "simtcp.ip6.output", False),
    ],
)
def test_the_table_itself(source: str, target: str, allowed: bool) -> None:
    """The classifier and the table say what ARCHITECTURE.md says (the check can fail)."""
    source_part, target_part = part_of(source), part_of(target)
    assert source_part is not None and target_part is not None
    assert (target_part in ALLOWED[source_part]) is allowed


def test_a_bad_arrow_is_caught(tmp_path: Path) -> None:
    """The parser sees relative and absolute imports of a backend from the core."""
    (tmp_path / "simtcp").mkdir()
    bad = tmp_path / "simtcp" / "stack.py"
    bad.write_text("from .backends.sim import Simulator\nimport simtcp.programs.cli\n")
    targets = [arrow.target for arrow in imports_of("simtcp.stack", bad)]
    assert targets == ["simtcp.backends.sim", "simtcp.programs.cli"]


@pytest.mark.parametrize("package", ["ip", "ip6", "link", "tcp"])
def test_the_network_layers_are_core(package: str) -> None:
    """simtcp/ip6/ is core like simtcp/ip/: sans-IO, below aio, drill and the backends."""
    modules = [name for name in module_files() if name.startswith(f"simtcp.{package}.")]
    assert modules, package
    assert {part_of(name) for name in modules} == {"core"}
