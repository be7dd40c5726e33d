"""The installed library works outside the notebooks: every exported module imports in a fresh interpreter,
none needs nbdev/fastcore at run time, and the layering rule holds (a module imports only modules of
lower-numbered notebooks)."""
import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LIB = ROOT / "expo_nb"

def notebook_of_module():
    "Map module name -> notebook number, read from each notebook's `#| default_exp` cell."
    found = {}
    for nb in sorted((ROOT / "nbs").glob("[0-9]*.ipynb")):
        cells = json.loads(nb.read_text())["cells"]
        for c in cells:
            m = re.search(r"#\|\s*default_exp\s+(\S+)", "".join(c["source"]))
            if m: found[m.group(1)] = int(re.match(r"(\d+)", nb.name).group(1)); break
    return found

MODULES = sorted(p.stem for p in LIB.glob("*.py") if not p.stem.startswith("_"))

def test_every_module_comes_from_a_notebook():
    assert set(MODULES) == set(notebook_of_module()), "a module in expo_nb/ has no notebook (or the reverse)"

@pytest.mark.parametrize("module", MODULES)
def test_imports_in_fresh_interpreter(module, tmp_path):
    code = (f"import sys, expo_nb.{module}; "
            "bad = [m for m in ('fastcore', 'nbdev', 'execnb') if m in sys.modules]; print(bad)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() == "[]", f"expo_nb.{module} pulls in a dev-only package at run time: {proc.stdout}"

def imported_expo_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level and node.module: names.add(node.module.split(".")[0])
            elif node.level: names.update(a.name for a in node.names)
            elif node.module and node.module.startswith("expo_nb."): names.add(node.module.split(".")[1])
            elif node.module == "expo_nb": names.update(a.name for a in node.names)
        elif isinstance(node, ast.Import):
            names.update(a.name.split(".")[1] for a in node.names if a.name.startswith("expo_nb."))
    return names

def test_layering():
    order = notebook_of_module()
    for mod, number in order.items():
        for dep in imported_expo_modules(LIB / f"{mod}.py") & set(order):
            assert order[dep] < number, (f"{mod} (notebook {number}) imports {dep} (notebook {order[dep]}): "
                                         "lower numbers only")
