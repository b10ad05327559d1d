"""The installed package: one version everywhere, the native module built, the layout one package."""
from __future__ import annotations

import re
from pathlib import Path

import onnxgan
from onnxgan.runtime import _native

ROOT = Path(__file__).resolve().parents[1]


def test_version_flows_from_pyproject_to_the_package_and_the_native_module():
    declared = re.search(r'^version = "([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.M).group(1)
    assert onnxgan.__version__ == declared
    assert _native.__version__ == declared


def test_rooms_install_under_one_onnxgan_package():
    import onnxgan.export
    import onnxgan.runtime
    import onnxgan.train

    for room in (onnxgan.train, onnxgan.export, onnxgan.runtime):
        assert room.__name__.startswith("onnxgan.")
        assert Path(room.__file__).parent.name in ("train", "export", "runtime")


def test_ci_runs_exactly_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    command = readme.split("Run the tests:", 1)[1].split("```bash\n", 1)[1].split("\n```", 1)[0].strip()
    assert command.endswith("python -m pytest")
    assert command in (ROOT / ".ci" / "run").read_text().splitlines()
