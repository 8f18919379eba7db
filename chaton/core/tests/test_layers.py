"""The layers of docs/architecture.md, enforced: no module imports a layer above its own.

Every module of ``chaton`` is read with :mod:`ast` (nothing is imported): imports at
the top, inside functions and under ``if TYPE_CHECKING:``, ``import x`` and
``from x import y``, relative ones resolved, and ``import_module("…")`` calls with
a literal name or a name a loop takes from a module-level tuple of literals.
``chaton.testing`` and the tests stand outside the rule.

An import the layering forbids fails the test, naming ``file:line`` and the rule,
unless :data:`ALLOWED` lists it with its reason; docs/architecture.md lists the
same ("Imports the layering forbids that we keep, and why").
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
PACKAGE = ROOT / "chaton"

#: From the bottom up. Each rank holds units (sets of module prefixes): a module may
#: import its own unit and any unit of a lower rank, never a peer unit of its own rank
#: nor a higher one. The longest matching prefix places a module.
RANKS: list[dict[str, tuple[str, ...]]] = [
    # Django-free: the adapters, the one subprocess runner and the loopback servers they use.
    {"adapters": ("chaton.adapters", "chaton.core.runner", "chaton.core.servers")},
    # The audit log, errors, clock, tokens, jobs, the gate's hook; the configuration file.
    {"core": ("chaton", "chaton.core", "chaton.project.config")},
    # The queue of mails and webhook posts, which members, the directory and governance use.
    {"notifications": ("chaton.notifications",)},
    {"members": ("chaton.members",)},
    # Peers: neither imports the other.
    {"directory": ("chaton.directory",), "security": ("chaton.security",)},
    {"services": ("chaton.services",), "backups": ("chaton.backups",), "mail": ("chaton.mail",)},
    {"governance": ("chaton.governance",)},
    # Watches everything below it: instances, the directory, backups, decisions awaiting votes.
    {"monitoring": ("chaton.monitoring",)},
    # Usage statistics: reads the instances, the members' tables and monitoring's roll-ups.
    {"stats": ("chaton.stats",)},
    # The activity report: members, services, decisions, backups, monitoring and statistics.
    {"reports": ("chaton.reports",)},
    # ChatonsInfos files, the software list, the register of authority requests, /transparency/.
    {"transparency": ("chaton.transparency",)},
    # The project (settings, URLs, the API's assembly), the command, ``python -m chaton``.
    {"interfaces": ("chaton.cli", "chaton.project", "chaton.__main__")},
]

#: Type-only imports (under ``if TYPE_CHECKING:``) of Django's user model (AUTH_USER_MODEL)
#: are allowed everywhere: every action names the account acting as its ``acting_user``.
USER_MODEL = ("chaton.directory.models", "Account")

#: (importing module, imported module or a prefix of it) → why the import stays.
#: Keep it short: each entry is mirrored in docs/architecture.md.
ALLOWED: dict[tuple[str, str], str] = {
}


@dataclass(frozen=True)
class Import:
    """One import of a module of ``chaton`` by another."""

    path: Path
    line: int
    importer: str
    imported: str
    names: tuple[str, ...]
    type_only: bool

    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_module(name: str) -> bool:
    """Return whether ``name`` is a module or package of the source tree."""
    path = ROOT.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _outside_the_rule(path: Path) -> bool:
    relative = path.relative_to(PACKAGE).parts
    return relative[0] == "testing" or "tests" in relative


def _sources() -> list[Path]:
    return sorted(path for path in PACKAGE.rglob("*.py") if not _outside_the_rule(path))


def _string_tuples(tree: ast.Module) -> dict[str, list[str]]:
    """Return the module-level names bound to a tuple or list of string literals."""
    found: dict[str, list[str]] = {}
    for node in tree.body:
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        else:
            continue
        if isinstance(value, ast.Tuple | ast.List) and value.elts and all(
                isinstance(element, ast.Constant) and isinstance(element.value, str)
                for element in value.elts):
            for target in targets:
                if isinstance(target, ast.Name):
                    found[target.id] = [element.value for element in value.elts
                                        if isinstance(element, ast.Constant)]
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return ((isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
            or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"))


def imports_of(path: Path) -> list[Import]:
    """Given a source file, return its imports of ``chaton`` modules, wherever they are."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    constants = _string_tuples(tree)
    found: list[Import] = []

    def add(node: ast.AST, imported: str, names: tuple[str, ...], type_only: bool) -> None:
        if imported == "chaton" or imported.startswith("chaton."):
            found.append(Import(path, getattr(node, "lineno", 0), module, imported, names,
                                type_only))

    def visit(node: ast.AST, type_only: bool, loops: dict[str, str]) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.body:
                visit(child, True, loops)
            for child in node.orelse:
                visit(child, type_only, loops)
            return
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(node, alias.name, (), type_only)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - (node.level - 1)]
                imported = ".".join(base + ([node.module] if node.module else []))
            else:
                imported = node.module or ""
            names = tuple(alias.name for alias in node.names)
            # ``from chaton.x import y`` imports the module chaton.x.y when there is one.
            modules = [name for name in names if _is_module(f"{imported}.{name}")]
            for name in modules:
                add(node, f"{imported}.{name}", (), type_only)
            if len(modules) < len(names):
                add(node, imported, tuple(name for name in names if name not in modules),
                    type_only)
        elif isinstance(node, ast.Call):
            function = node.func
            called = (function.id if isinstance(function, ast.Name)
                      else function.attr if isinstance(function, ast.Attribute) else "")
            if called in {"import_module", "__import__"} and node.args:
                argument = node.args[0]
                if isinstance(argument, ast.Constant) and isinstance(argument.value, str):
                    add(node, argument.value, (), type_only)
                elif isinstance(argument, ast.Name) and argument.id in loops:
                    for name in constants.get(loops[argument.id], []):
                        add(node, name, (), type_only)
        if isinstance(node, ast.For) and isinstance(node.target, ast.Name) and isinstance(
                node.iter, ast.Name):
            loops = {**loops, node.target.id: node.iter.id}
        for child in ast.iter_child_nodes(node):
            visit(child, type_only, loops)

    visit(tree, False, {})
    return found


def place(module: str) -> tuple[int, str]:
    """Given a module name, return (rank, unit) of its layer."""
    best: tuple[int, int, str] | None = None
    for rank, units in enumerate(RANKS):
        for unit, prefixes in units.items():
            for prefix in prefixes:
                # "chaton" names the package itself only: a new app must be given its rank.
                if module == prefix or (prefix != "chaton" and module.startswith(prefix + ".")):
                    if best is None or len(prefix) > best[0]:
                        best = (len(prefix), rank, unit)
    assert best is not None, (f"{module} has no layer: give its app a rank in RANKS here and "
                              "in docs/architecture.md's Layers")
    return best[1], best[2]


def broken_rule(found: Import) -> str | None:
    """Return the rule ``found`` breaks, or None if the layering allows it."""
    if found.type_only and found.imported == USER_MODEL[0] and found.names == USER_MODEL[1:]:
        return None
    rank, unit = place(found.importer)
    target_rank, target_unit = place(found.imported)
    if unit == target_unit:
        return None
    if target_rank > rank:
        return f"{unit} sits below {target_unit}: dependencies point down only"
    if target_rank == rank:
        return f"{unit} and {target_unit} are peers: neither imports the other"
    return None


def _allowance(found: Import) -> tuple[str, str] | None:
    for importer, imported in ALLOWED:
        if found.importer == importer and (found.imported == imported
                                           or found.imported.startswith(imported + ".")):
            return importer, imported
    return None


def _all_imports() -> list[Import]:
    return [found for path in _sources() for found in imports_of(path)]


def test_no_import_goes_up_the_layers() -> None:
    broken = []
    for found in _all_imports():
        rule = broken_rule(found)
        if rule is not None and _allowance(found) is None:
            broken.append(f"{found.where()}: {found.importer} imports {found.imported}: {rule}")
    assert not broken, "imports the layering forbids:\n" + "\n".join(broken)


def test_every_allowance_is_still_needed() -> None:
    used = {_allowance(found) for found in _all_imports() if broken_rule(found) is not None}
    stale = [f"{importer} → {imported}" for importer, imported in ALLOWED
             if (importer, imported) not in used]
    assert not stale, ("no longer needed: remove them from ALLOWED and from "
                       "docs/architecture.md:\n" + "\n".join(stale))


def test_every_allowance_is_written_in_the_architecture_page() -> None:
    page = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    section = page.partition("### Imports the layering forbids that we keep")[2]
    assert section, "docs/architecture.md lacks its list of the imports we keep"
    missing = [f"{importer} → {imported}" for importer, imported in ALLOWED
               if f"`{importer}` → `{imported}`" not in section]
    assert not missing, "not written in docs/architecture.md:\n" + "\n".join(missing)


def test_the_adapters_layer_imports_no_django() -> None:
    with_django = [f"{path.relative_to(ROOT)}:{node.lineno}"
                   for path in _sources() if place(_module_name(path))[1] == "adapters"
                   for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
                   if (isinstance(node, ast.Import)
                       and any(alias.name.split(".")[0] == "django" for alias in node.names))
                   or (isinstance(node, ast.ImportFrom) and not node.level
                       and (node.module or "").split(".")[0] == "django")]
    assert not with_django, "the adapters are Django-free:\n" + "\n".join(with_django)


# --- the walker itself: what it must see ------------------------------------------------


@pytest.fixture
def source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fake ``chaton`` tree whose files the walker reads as it reads the real one."""
    monkeypatch.setattr(__import__(__name__, fromlist=["ROOT"]), "ROOT", tmp_path)
    for name in ("members", "directory", "security", "governance", "services", "backups",
                 "cli"):
        (tmp_path / "chaton" / name).mkdir(parents=True)
        (tmp_path / "chaton" / name / "__init__.py").write_text("", encoding="utf-8")
        (tmp_path / "chaton" / name / "models.py").write_text("", encoding="utf-8")
    return tmp_path / "chaton" / "members"


def _write(folder: Path, text: str) -> Path:
    path = folder / "actions.py"
    path.write_text(text, encoding="utf-8")
    return path


def _rules(path: Path) -> list[tuple[int, str, str | None]]:
    return [(found.line, found.imported, broken_rule(found)) for found in imports_of(path)]


def test_the_walker_sees_function_local_relative_and_string_imports(source: Path) -> None:
    path = _write(source, "\n".join([
        "from importlib import import_module",
        "MODULES = ('chaton.services.jobs',)",
        "def run():",
        "    from chaton.governance.gate import require",
        "    from ..directory import models",
        "    import chaton.backups.actions",
        "    import_module('chaton.cli.app')",
        "    for name in MODULES:",
        "        import_module(name)",
    ]))
    seen = _rules(path)
    assert [(line, imported) for line, imported, _rule in seen] == [
        (4, "chaton.governance.gate"), (5, "chaton.directory.models"),
        (6, "chaton.backups.actions"), (7, "chaton.cli.app"), (9, "chaton.services.jobs")]
    assert all(rule is not None and "below" in rule for _line, _imported, rule in seen)


def test_the_walker_checks_type_only_imports_except_the_user_model(source: Path) -> None:
    path = _write(source, "\n".join([
        "from typing import TYPE_CHECKING",
        "if TYPE_CHECKING:",
        "    from chaton.directory.models import Account",
        "    from chaton.directory.models import Group",
        "    from chaton.governance.models import Operation",
    ]))
    assert [(line, rule is None) for line, _imported, rule in _rules(path)] == [
        (3, True), (4, False), (5, False)]


def test_the_walker_refuses_peers_and_lets_imports_go_down(source: Path) -> None:
    path = source.parent / "directory" / "actions.py"
    path.write_text("from chaton.security import models\nfrom chaton.members import models\n"
                    "from chaton.core.errors import NotFound\nfrom . import models\n",
                    encoding="utf-8")
    assert [(imported, rule) for _line, imported, rule in _rules(path)] == [
        ("chaton.security.models", "directory and security are peers: neither imports the "
                                   "other"),
        ("chaton.members.models", None), ("chaton.core.errors", None),
        ("chaton.directory.models", None)]
