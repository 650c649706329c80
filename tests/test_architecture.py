"""The engine never imports the console or textual, and inside engine/ each layer imports only
those below it (SPEC section 2): the import contracts in pyproject.toml, and proof that they fail."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest


def test_engine_never_imports_textual_or_console():
    code = (
        "import sys, pkgutil, importlib, engine\n"
        "for m in pkgutil.walk_packages(engine.__path__, 'engine.'):\n"
        "    if not m.name.endswith('.__main__'):  # a __main__ runs its program\n"
        "        importlib.import_module(m.name)\n"
        "bad = sorted(n for n in sys.modules if n == 'textual' or n.startswith(('textual.', 'console')))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"engine pulled in: {out.stdout}"


ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(tree: Path) -> subprocess.CompletedProcess:
    """`lint-imports` (the contracts in pyproject.toml) over the engine and console in `tree`."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=tree, capture_output=True, text=True, env=env)


def copy_tree(tmp_path: Path) -> Path:
    for name in ("engine", "console", "themes"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_the_layers_hold():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize("lower, higher", [
    ("engine/domain/model.py", "engine.risk.book"),      # the domain reaching up into risk
    ("engine/risk/gate.py", "engine.live.engine"),       # the gate importing the loop
    ("engine/venues/paper/ledger.py", "engine.store"),   # a venue importing the store
    ("engine/api/client.py", "engine.gateway.app"),      # the wire contract importing FastAPI's app
    ("engine/live/engine.py", "engine.facade"),          # the loop importing its own facade
])
def test_a_lower_layer_importing_a_higher_one_breaks_the_contract(tmp_path, lower, higher):
    tree = copy_tree(tmp_path)
    planted = tree / lower
    planted.write_text(planted.read_text() + f"\nimport {higher}  # planted by the test\n")
    result = lint_imports(tree)
    assert result.returncode != 0
    assert "engine layers BROKEN" in result.stdout
    assert higher in result.stdout


def test_the_engine_importing_textual_breaks_the_contract(tmp_path):
    tree = copy_tree(tmp_path)
    planted = tree / "engine/domain/clock.py"
    planted.write_text(planted.read_text() + "\nimport textual  # planted by the test\n")
    result = lint_imports(tree)
    assert result.returncode != 0
    assert "the engine never imports the console or textual BROKEN" in result.stdout
