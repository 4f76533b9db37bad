"""The shape of the code, as the redesign by concern left it: parts a newcomer can find, small
modules, and no per-process state outside the runtime (users/runtime.py)."""
import ast
import contextvars
import enum
import functools
import importlib
import logging
import pkgutil
import re
import types
import typing
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("sidus", "users")
MAX_LINES = 300

# Module globals that are state, each for a reason of its own.
ALLOWED = {
    ("users.runtime", "_current"): "the one runtime of the process",
    ("sidus.asgi", "django_application"): "Django's ASGI application, which the edge wraps",
    ("sidus.asgi", "application"): "the ASGI application uvicorn serves",
    ("sidus.celery", "app"): "the Celery application its workers run",
    ("sidus.urls", "urlpatterns"): "Django's URLconf",
    ("users.mail.links", "password_reset_token"): "stateless, as Django's own default_token_generator",
    ("users.mail.links", "email_verification_token"): "stateless, as Django's own default_token_generator",
}
# Django's settings: configuration read once, in capitals as Django wants it, and its `env` reader.
SKIPPED = {"sidus.settings"}


def modules() -> list[str]:
    names = []
    for package in PACKAGES:
        for info in pkgutil.walk_packages([str(ROOT / package)], prefix=f"{package}."):
            if ".migrations" not in info.name:
                names.append(info.name)
    return [*PACKAGES, *names]


def assigned_names(module: types.ModuleType) -> list[str]:
    """The names a module binds at its top level by assignment (not imports, functions or classes)."""
    tree = ast.parse(Path(module.__file__).read_text())
    names = []
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(
            node, ast.AnnAssign) and node.value is not None else []
        for target in targets:
            names.extend(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
    return names


def constant(value: object) -> bool:
    """Immutable, or code: what cannot hold state between requests."""
    if value is None or isinstance(value, (bool, int, float, complex, str, bytes, re.Pattern, enum.Enum,
                                           logging.Logger, type, types.ModuleType)):
        return True
    if isinstance(value, (types.FunctionType, types.BuiltinFunctionType, functools.partial,
                          functools._lru_cache_wrapper)):
        return True
    if isinstance(value, contextvars.ContextVar):  # its value is each context's, not the process's
        return True
    if isinstance(value, (types.GenericAlias, typing.TypeVar)) or type(value).__module__ == "typing":
        return True
    if isinstance(value, (tuple, frozenset)):
        return all(constant(item) for item in value)
    return False


def test_no_module_holds_state_outside_the_runtime() -> None:
    found = []
    for name in modules():
        if name in SKIPPED:
            continue
        module = importlib.import_module(name)
        for variable in assigned_names(module):
            if variable.startswith("__") or variable.isupper() or (name, variable) in ALLOWED:
                continue
            value = getattr(module, variable)
            if not constant(value):
                found.append(f"{name}.{variable}: {type(value).__name__}")
    assert found == []


@pytest.mark.parametrize("package", PACKAGES)
def test_no_module_is_over_300_lines(package: str) -> None:
    long = {str(path.relative_to(ROOT)): count for path in (ROOT / package).rglob("*.py")
            if "migrations" not in path.parts and (count := len(path.read_text().splitlines())) > MAX_LINES}
    assert long == {}
