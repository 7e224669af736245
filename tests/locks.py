"""The committed locks and pyproject.toml's dependencies, as the packaging tests read them.

requirements.lock pins what `pip install sessionflow` resolves (the runtime dependencies);
requirements-dev.lock pins those plus the dev extra. Both are uv's universal output: a pin
that applies on some platforms or Pythons only carries its marker.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
RUNTIME_LOCK = ROOT / "requirements.lock"
DEV_LOCK = ROOT / "requirements-dev.lock"


def lock_pins(path: Path) -> dict[NormalizedName, Requirement]:
    """Every pin of a lock, by canonical name (uv writes one `name==version ; marker` line
    per package; its `# via` comments are indented)."""
    pins: dict[NormalizedName, Requirement] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith(("#", " ")):
            requirement = Requirement(line)
            pins[canonicalize_name(requirement.name)] = requirement
    return pins


def pinned_version(requirement: Requirement) -> str:
    (specifier,) = requirement.specifier
    assert specifier.operator == "==", f"{requirement} is not an exact pin"
    return specifier.version


def applicable_pins(path: Path) -> dict[NormalizedName, str]:
    """The pins of a lock that apply to this interpreter and platform: name -> version."""
    return {
        name: pinned_version(requirement)
        for name, requirement in lock_pins(path).items()
        if requirement.marker is None or requirement.marker.evaluate()
    }


def declared_dependencies(extra: str | None = None) -> list[Requirement]:
    """pyproject.toml's `[project] dependencies`, or those of an optional extra."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    lines = project["optional-dependencies"][extra] if extra else project["dependencies"]
    return [Requirement(line) for line in lines]
