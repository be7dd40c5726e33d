"""Every notebook is one pytest item, executed top to bottom by `nbdev_test` in its own subprocess."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

NBS = Path(__file__).resolve().parents[1] / "nbs"
NOTEBOOKS = sorted(p for p in NBS.glob("*.ipynb") if not p.name.startswith("_"))
TIMEOUT_S = int(os.environ.get("EXPO_NB_NOTEBOOK_TIMEOUT", "600"))

def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 2, f"no notebooks found under {NBS}"

@pytest.mark.parametrize("nb", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(nb):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    nbdev_test = Path(sys.executable).with_name("nbdev_test")
    proc = subprocess.run([str(nbdev_test), "--path", str(nb), "--n_workers", "0"], cwd=NBS.parent, env=env,
                          capture_output=True, text=True, timeout=TIMEOUT_S)
    assert proc.returncode == 0, f"{nb.name} failed:\n{proc.stdout[-6000:]}\n{proc.stderr[-6000:]}"
