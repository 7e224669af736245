"""What `pip install sessionflow` brings is what the code needs: every third-party import of
the installed packages is a declared runtime dependency, and the committed locks agree with
pyproject.toml and with each other (tests/integration/test_clean_install.py installs them).
"""

from __future__ import annotations

import importlib.metadata
import sys
from collections.abc import Iterable
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name

from tests.locks import (
    DEV_LOCK,
    ROOT,
    RUNTIME_LOCK,
    applicable_pins,
    declared_dependencies,
    lock_pins,
    pinned_version,
)
from tests.unit.test_architecture import imported_modules

# The import packages the wheel installs (pyproject.toml's [tool.setuptools] packages).
OWN_PACKAGES = {"pipeline", "flows"}


def undeclared_imports(files: Iterable[Path], declared: set[NormalizedName]) -> list[str]:
    """One line per third-party module a file imports (at any level: a function's lazy
    import runs too) whose distribution is not in `declared`."""
    providers = importlib.metadata.packages_distributions()
    problems = []
    for path in files:
        top_level = {module.split(".")[0] for module in imported_modules(path)}
        for module in sorted(top_level - OWN_PACKAGES - set(sys.stdlib_module_names)):
            distributions = {canonicalize_name(name) for name in providers.get(module, [])}
            if not distributions & declared:
                provided = ", ".join(sorted(distributions)) or "no installed distribution"
                problems.append(
                    f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path} imports "
                    f"{module} ({provided}), not in pyproject.toml's [project] dependencies"
                )
    return problems


def runtime_names() -> set[NormalizedName]:
    return {canonicalize_name(requirement.name) for requirement in declared_dependencies()}


def test_every_third_party_import_of_the_package_is_a_runtime_dependency() -> None:
    files = [path for package in OWN_PACKAGES for path in sorted((ROOT / package).rglob("*.py"))]
    assert len(files) > 50  # the walk found the package, not an empty directory

    assert undeclared_imports(files, runtime_names()) == []


def test_the_check_names_an_import_only_the_dev_extra_brings(tmp_path: Path) -> None:
    module = tmp_path / "chart.py"
    module.write_text("import json\nimport numpy\n\ndef frame():\n    import pandas.api\n")

    assert undeclared_imports([module], runtime_names()) == [
        f"{module} imports pandas (pandas), not in pyproject.toml's [project] dependencies"
    ]


def test_every_runtime_pin_is_the_same_in_the_dev_lock() -> None:
    runtime, dev = lock_pins(RUNTIME_LOCK), lock_pins(DEV_LOCK)
    differing = {
        name: (pinned_version(pin), pinned_version(dev[name]) if name in dev else None)
        for name, pin in runtime.items()
        if name not in dev or pinned_version(dev[name]) != pinned_version(pin)
    }
    assert differing == {}, "requirements.lock -> requirements-dev.lock; run `make lock`"
    # The dev lock adds the dev tools, which the runtime lock must not hold.
    assert {"pytest", "ruff", "mypy", "pandas", "playwright"} <= dev.keys() - runtime.keys()


def dependency_closure(roots: Iterable[Requirement]) -> set[NormalizedName]:
    """The distributions `roots` pull in on this interpreter, from the installed ones'
    metadata (extras followed, markers evaluated), as an installer resolves them."""
    found: set[tuple[NormalizedName, frozenset[str]]] = set()
    pending = [(requirement, frozenset({""})) for requirement in roots]
    while pending:
        requirement, parent_extras = pending.pop()
        marker = requirement.marker
        if marker and not any(marker.evaluate({"extra": extra}) for extra in parent_extras):
            continue
        key = (canonicalize_name(requirement.name), frozenset(requirement.extras))
        if key in found:
            continue
        found.add(key)
        for line in importlib.metadata.distribution(key[0]).requires or []:
            pending.append((Requirement(line), frozenset({"", *requirement.extras})))
    return {name for name, _ in found}


def test_the_locks_hold_exactly_what_pyprojects_dependencies_resolve_to() -> None:
    dev_pins = applicable_pins(DEV_LOCK)
    installed = {name: importlib.metadata.version(name) for name in dev_pins}
    assert installed == dev_pins, "the venv is not the dev lock's: run `make setup`"
    runtime = declared_dependencies()

    assert dependency_closure(runtime) == set(applicable_pins(RUNTIME_LOCK))
    assert dependency_closure([*runtime, *declared_dependencies("dev")]) == set(dev_pins)
