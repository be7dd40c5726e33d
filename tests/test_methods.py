"""The method registry (15_methods) is the one place a method name is mapped to what it runs: every consumer reads it,
and no other module spells out the mapping."""
import ast
import re
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from expo_nb.cli import app
from expo_nb.config import RunConfig, build_task
from expo_nb.core import PromptDomain
from expo_nb.embed import HashingEmbedder
from expo_nb.expo_es import ExpoEsSelector, RotationEsSelector
from expo_nb.methods import METHODS, get_method
from expo_nb.runner import make_driver

ROOT = Path(__file__).resolve().parents[1]
NAMES = set(METHODS)


def method_comparisons(path: Path) -> list[str]:
    "Places where code compares something with a registered method name (`x == 'expo-d-only'`, `in ('opro', ...)`)."
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.Compare):
            continue
        for side in [node.left, *node.comparators]:
            values = side.elts if isinstance(side, (ast.Tuple, ast.List, ast.Set)) else [side]
            named = [v.value for v in values if isinstance(v, ast.Constant) and v.value in NAMES]
            if named:
                found.append(f"{path.name}:{node.lineno} {named}")
    return found


def test_no_module_outside_the_registry_maps_method_names():
    offenders = [hit for module in sorted((ROOT / "expo_nb").glob("*.py"))
                 if module.name not in ("methods.py", "_modidx.py") for hit in method_comparisons(module)]
    assert offenders == [], offenders


def test_the_grep_finds_a_mapping_when_there_is_one(tmp_path):
    sneaky = tmp_path / "sneaky.py"
    sneaky.write_text("def pick(method):\n    if method in ('opro', 'opro-enhanced'): return 0\n")
    assert method_comparisons(sneaky) == ["sneaky.py:2 ['opro', 'opro-enhanced']"]


def test_cli_help_and_index_read_the_registry():
    help_text = re.sub(r"\s+", " ", CliRunner().invoke(app, ["run", "--help"], env={"COLUMNS": "400"}).output)
    assert all(name in help_text for name in METHODS), help_text
    index = (ROOT / "nbs" / "index.ipynb").read_text()
    assert "method_table()" in index


def test_aliases_of_the_synthetic_benchmark_resolve():
    assert ([get_method(n).name for n in ("EXPO", "NeuralUCB", "random", "fixed")]
            == ["expo", "neuralucb", "random", "opro"])


def test_expo_es_picks_its_exemplar_selector_by_the_task_exemplar_search():
    "Bandit rows are only reordered (rotations); the optimization tasks choose a subset of their history."
    embedder, kinds = HashingEmbedder(16), {}
    for task in ("bandit", "linreg", "tsp"):
        config = RunConfig(task=task, method="expo-es", samples=1 if task == "bandit" else 2)
        made = build_task(config)
        domain = PromptDomain([made.description0.text], [made.instruction0.text], np.eye(1), np.eye(1))
        kinds[task] = type(make_driver(config, domain, made, embedder).exemplar_selector)
    assert kinds == {"bandit": RotationEsSelector, "linreg": ExpoEsSelector, "tsp": ExpoEsSelector}
