"""The worker-side contract in pyproject.toml forbids every poolwise module a worker must
not import; a module added later must join its list, or lint-imports would let it in."""

from __future__ import annotations

import pkgutil
import tomllib
from pathlib import Path

import poolwise
import poolwise.backends

_PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"
#: What code in backends/child may import besides itself and the standard library.
_ALLOWED = {"poolwise.transport", "poolwise.errors"}


def _contracts() -> list[dict[str, object]]:
    config = tomllib.loads(_PYPROJECT.read_text())
    contracts: list[dict[str, object]] = config["tool"]["importlinter"]["contracts"]
    return contracts


def _layers_above_backends() -> set[str]:
    [layers] = [c for c in _contracts() if c["type"] == "layers"]
    names = layers["layers"]
    assert isinstance(names, list)
    above = names[: names.index("poolwise.backends")]
    return {name.strip() for layer in above for name in layer.split("|")}


def _forbidden_to_child() -> set[str]:
    [contract] = [
        c
        for c in _contracts()
        if c["type"] == "forbidden" and c["source_modules"] == ["poolwise.backends.child"]
    ]
    forbidden = contract["forbidden_modules"]
    assert isinstance(forbidden, list)
    return set(forbidden)


def _modules(package: str, path: list[str]) -> set[str]:
    """The modules and packages directly inside ``package``."""
    return {f"{package}.{info.name}" for info in pkgutil.iter_modules(path)}


def test_every_module_outside_child_is_forbidden_to_child() -> None:
    covered = _forbidden_to_child() | _layers_above_backends() | _ALLOWED
    top = _modules("poolwise", list(poolwise.__path__)) - {"poolwise.backends"}
    backends = _modules("poolwise.backends", list(poolwise.backends.__path__))
    backends.discard("poolwise.backends.child")
    missing = sorted((top | backends) - covered)
    assert missing == [], f"add these to the worker-side contract in pyproject.toml: {missing}"
