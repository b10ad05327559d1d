"""The house's arrows (README's Map): every module of every room, read with ``ast``, imports only
what its room may. runtime: no train, export, torch or onnx (the base install has neither); train: no
runtime or export; quality (serves train and runtime): no torch, onnx or other room; the package root
(src/onnxgan): no room and no torch. export may read train and runtime. And tests share one kit
(tests/kit.py) and conftest's fixtures: no test module imports another."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# room -> the top-level packages and onnxgan rooms its modules must not import
FORBIDDEN = {
    "onnxgan": {"torch", "onnx", "onnxgan.train", "onnxgan.export", "onnxgan.runtime", "onnxgan.quality"},
    "train": {"onnxgan.runtime", "onnxgan.export"},
    "export": set(),
    "runtime": {"torch", "onnx", "onnxgan.train", "onnxgan.export"},
    "quality": {"torch", "onnx", "onnxgan.train", "onnxgan.export", "onnxgan.runtime"},
}


def rooms() -> dict[str, Path]:
    """room -> folder, from pyproject's wheel.packages (so that a new room cannot go unchecked)."""
    line = next(line for line in (ROOT / "pyproject.toml").read_text().splitlines() if line.startswith("wheel.packages"))
    mapped = dict(re.findall(r'"onnxgan(?:/(\w+))?" = "([^"]+)"', line))
    return {room or "onnxgan": ROOT / folder for room, folder in mapped.items()}


def imports(source: str, package: str) -> set[str]:
    """Absolute names of every module ``source`` imports (at any depth), relative ones resolved
    against ``package`` (the importing module's package, e.g. ``onnxgan.runtime``)."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)  # `from onnxgan import train`
    return found


def violations(room: str, source: str, package: str) -> list[str]:
    """The imports in ``source`` (a module of ``room``) that the house forbids."""
    return sorted(name for name in imports(source, package)
                  if any(name == banned or name.startswith(f"{banned}.") for banned in FORBIDDEN[room]))


def modules() -> list[tuple[str, Path, str]]:
    """(room, file, its package) for every Python module of every room."""
    found = []
    for room, folder in rooms().items():
        for path in sorted(folder.rglob("*.py")):
            parts = path.relative_to(folder).parent.parts
            found.append((room, path, ".".join(["onnxgan", *([] if room == "onnxgan" else [room]), *parts])))
    return found


def test_every_room_has_rules_and_modules():
    assert set(rooms()) - {"web"} == set(FORBIDDEN)  # web/ holds the browser page: no Python
    assert {room for room, _, _ in modules()} == set(FORBIDDEN)


@pytest.mark.parametrize("room, path, package", modules(), ids=[str(p.relative_to(ROOT)) for _, p, _ in modules()])
def test_module_imports_only_what_its_room_may(room, path, package):
    assert violations(room, path.read_text(), package) == []


@pytest.mark.parametrize("room, source, package, expected", [
    ("runtime", "def f():\n    import torch.nn\n", "onnxgan.runtime", ["torch.nn"]),
    ("runtime", "from onnxgan.train.config import ModelConfig\n", "onnxgan.runtime",
     ["onnxgan.train.config", "onnxgan.train.config.ModelConfig"]),
    ("runtime", "from ..export import cli\n", "onnxgan.runtime", ["onnxgan.export", "onnxgan.export.cli"]),
    ("runtime", "from onnxgan import train\n", "onnxgan.runtime", ["onnxgan.train"]),
    ("runtime", "import onnxruntime\nfrom .latent import latent\n", "onnxgan.runtime", []),
    ("train", "from onnxgan.runtime.sampler import Sampler\n", "onnxgan.train",
     ["onnxgan.runtime.sampler", "onnxgan.runtime.sampler.Sampler"]),
    ("quality", "import torch\n", "onnxgan.quality", ["torch"]),
    ("onnxgan", "from .quality import Evaluator\n", "onnxgan", ["onnxgan.quality", "onnxgan.quality.Evaluator"]),
])
def test_the_check_sees_a_forbidden_arrow(room, source, package, expected):
    assert violations(room, source, package) == expected



# A test module or conftest, by its import name (the tests run with their folder on sys.path).
TEST_MODULE = re.compile(r"(tests\.)?(attacks\.)?(test_\w+|conftest)")


def imported_test_modules(source: str) -> list[str]:
    """The test modules (``test_*``) and conftest that ``source`` imports: tests share the kit
    (tests/kit.py) and conftest's fixtures, never another test module."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]  # `from tests import test_x`
        else:
            continue
        found.update(name for name in names if TEST_MODULE.fullmatch(name))
    return sorted(found)


@pytest.mark.parametrize("path", sorted((ROOT / "tests").rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_test_module_imports_another(path):
    assert imported_test_modules(path.read_text()) == []


def test_the_check_sees_a_test_module_imported():
    source = "import conftest\nfrom test_train import TINY\nfrom tests import test_web\nfrom kit import TRAIN\n"
    assert imported_test_modules(source) == ["conftest", "test_train", "tests.test_web"]
