"""Imports point one way: no runtime module reaches into the development
tools, the policy depends on nothing but ``errors``, ``safefile`` and
``display`` (which depend on nothing but ``errors``), the lifecycle on nothing.

Modules are read with ``ast``, not imported, so every import counts: at module
level, inside a function, or under ``TYPE_CHECKING``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = "asterisk_recguard"
PACKAGE_DIR = Path(__file__).resolve().parents[2] / PACKAGE
# The only modules outside devtools/ allowed to use it: the commands that run it.
DEVTOOLS_USERS = {f"{PACKAGE}.commands.sandbox", f"{PACKAGE}.commands.demo"}


def module_name(path: Path, package_dir: Path) -> str:
    parts = [package_dir.name, *path.relative_to(package_dir).with_suffix("").parts]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path, package_dir: Path) -> Iterator[tuple[int, list[str]]]:
    """Each import statement of ``path`` (its line, and the modules it names),
    relative imports resolved to absolute names.

    ``from X import a`` names ``X``; only when ``X`` is the top package does it
    name ``X.a`` instead, since then ``a`` is one of the package's modules.
    """
    name = module_name(path, package_dir)
    # The package a relative import starts from.
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            yield node.lineno, [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                source = ".".join([*base, *([node.module] if node.module else [])])
            else:
                source = node.module or ""
            if source == package_dir.name:
                yield node.lineno, [f"{source}.{alias.name}" for alias in node.names]
            else:
                yield node.lineno, [source]


def is_within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def modules_of(package_dir: Path) -> list[Path]:
    return sorted(package_dir.rglob("*.py"))


def devtools_importers(package_dir: Path) -> list[str]:
    devtools = f"{package_dir.name}.devtools"
    found = []
    for path in modules_of(package_dir):
        name = module_name(path, package_dir)
        if is_within(name, devtools) or name in DEVTOOLS_USERS:
            continue
        for line, targets in imported_modules(path, package_dir):
            if any(is_within(target, devtools) for target in targets):
                found.append(f"{name} (line {line})")
    return found


def package_imports(package_dir: Path, owner: str, allowed: tuple[str, ...]) -> list[str]:
    """``module imports target`` for each import of the package by ``owner``
    (a module or a package) that is neither its own nor in ``allowed``."""
    prefix = f"{package_dir.name}.{owner}"
    permitted = [prefix, *(f"{package_dir.name}.{module}" for module in allowed)]
    found = []
    for path in modules_of(package_dir):
        name = module_name(path, package_dir)
        if not is_within(name, prefix):
            continue
        for _line, targets in imported_modules(path, package_dir):
            for target in targets:
                if is_within(target, package_dir.name) and not any(is_within(target, p) for p in permitted):
                    found.append(f"{name} imports {target}")
    return found


# --------------------------------------------------------------------------
# the package as it is


def test_the_package_is_found() -> None:
    names = {module_name(path, PACKAGE_DIR) for path in modules_of(PACKAGE_DIR)}
    assert {f"{PACKAGE}.lifecycle", f"{PACKAGE}.devtools", *DEVTOOLS_USERS} <= names
    assert f"{PACKAGE}.policy" in names, "neither policy.py nor policy/__init__.py"


def test_no_runtime_module_imports_the_devtools() -> None:
    offenders = devtools_importers(PACKAGE_DIR)
    assert not offenders, f"runtime modules import asterisk_recguard.devtools: {', '.join(offenders)}"


def test_the_policy_imports_nothing_from_the_package_but_errors_safefile_and_display() -> None:
    offenders = package_imports(PACKAGE_DIR, "policy", allowed=("errors", "safefile", "display"))
    assert not offenders, "; ".join(offenders)


@pytest.mark.parametrize("module", ["safefile", "display"])
def test_what_the_policy_may_import_imports_nothing_from_the_package_but_errors(module: str) -> None:
    # The policy reads its file and words its errors through these, so they stay leaves.
    offenders = package_imports(PACKAGE_DIR, module, allowed=("errors",))
    assert not offenders, "; ".join(offenders)


def test_the_lifecycle_imports_nothing_from_the_package() -> None:
    offenders = package_imports(PACKAGE_DIR, "lifecycle", allowed=())
    assert not offenders, "; ".join(offenders)


# --------------------------------------------------------------------------
# the checks themselves catch what they must


def write_tree(root: Path, files: dict[str, str]) -> Path:
    package_dir = root / PACKAGE
    for relative, text in files.items():
        path = package_dir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return package_dir


@pytest.mark.parametrize(
    ("module", "source", "line"),
    [
        ("guard.py", "import asterisk_recguard.devtools.sandbox\n", 1),
        ("guard.py", "from asterisk_recguard.devtools.callsim import CallerSimulator\n", 1),
        ("guard.py", "from asterisk_recguard import devtools\n", 1),
        ("guard.py", "from .devtools.sandbox import Sandbox\n", 1),
        ("guard.py", "from . import devtools\n", 1),
        ("guard.py", "def later() -> None:\n    from .devtools import demo\n", 2),
        ("commands/keys.py", "import os\nfrom ..devtools import sandbox\n", 2),
    ],
)
def test_a_devtools_import_is_caught_and_named(tmp_path: Path, module: str, source: str, line: int) -> None:
    package_dir = write_tree(
        tmp_path,
        {
            "__init__.py": "",
            "guard.py": "",
            "devtools/__init__.py": "",
            "devtools/demo.py": "from ..guard import x\n",
            "commands/__init__.py": "",
            "commands/demo.py": "from ..devtools.demo import run_demo\n",
            "commands/run.py": "from .. import guard\n",
            module: source,
        },
    )
    name = ".".join([PACKAGE, *Path(module).with_suffix("").parts])
    assert devtools_importers(package_dir) == [f"{name} (line {line})"]


@pytest.mark.parametrize(
    "files",
    [
        {"policy.py": "from .errors import UserError\nfrom .settings import Settings\n"},
        {"policy/__init__.py": "from .model import Policy\n", "policy/model.py": "from .. import settings\n"},
        {"policy/rules.py": "from ..errors import UserError\nfrom asterisk_recguard.storage import x\n"},
    ],
    ids=["module", "package-relative", "package-absolute"],
)
def test_a_policy_import_beyond_errors_is_caught(tmp_path: Path, files: dict[str, str]) -> None:
    package_dir = write_tree(tmp_path, {"__init__.py": "", **files})
    offenders = package_imports(package_dir, "policy", allowed=("errors",))
    assert len(offenders) == 1
    assert "settings" in offenders[0] or "storage" in offenders[0]


def test_the_policy_package_may_import_itself_and_errors(tmp_path: Path) -> None:
    package_dir = write_tree(
        tmp_path,
        {
            "__init__.py": "",
            "policy/__init__.py": "from .model import Policy\nfrom . import rules\n",
            "policy/model.py": "from ..errors import UserError\nimport re\n",
            "policy/rules.py": (
                "from asterisk_recguard.policy.model import Policy\nfrom asterisk_recguard import errors\n"
            ),
            # Not the policy: a name that only starts the same way.
            "policyfile.py": "from .settings import Settings\n",
        },
    )
    assert package_imports(package_dir, "policy", allowed=("errors",)) == []


def test_a_lifecycle_import_of_the_package_is_caught(tmp_path: Path) -> None:
    package_dir = write_tree(tmp_path, {"__init__.py": "", "lifecycle.py": "from .errors import UserError\n"})
    assert package_imports(package_dir, "lifecycle", allowed=()) == [
        f"{PACKAGE}.lifecycle imports {PACKAGE}.errors"
    ]
