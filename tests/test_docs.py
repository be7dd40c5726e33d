"""The offline docs site: every notebook becomes a page with its outputs, and the index links them all."""
import re, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

def test_docs_site_builds_offline(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "docs.py"), str(tmp_path)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    notebooks = sorted(p.stem for p in (ROOT / "nbs").glob("*.ipynb") if not p.name.startswith("_") and p.stem != "index")
    pages = sorted(p.stem for p in tmp_path.glob("*.html") if p.name != "index.html")
    assert pages == notebooks
    index = (tmp_path / "index.html").read_text()
    assert sorted(re.findall(r'href="([^"]+)\.html"', index)) == notebooks
    core = (tmp_path / "00_core.html").read_text()
    assert "Core types" in core and "ExpoError" in core
    assert "Quick start: two commands" in index  # the home page is the index notebook


def test_readme_is_generated_from_the_index_notebook():
    "README.md is tools/readme.py's rendering of nbs/index.ipynb, and it states the two commands."
    sys.path.insert(0, str(ROOT / "tools"))
    try: import readme
    finally: sys.path.pop(0)
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert text == readme.render(), "README.md is stale: run python tools/readme.py"
    assert "bash tools/main.sh" in text and "bash tools/test.sh" in text
    assert "#| hide" not in text and "assert len(selector.history)" not in text  # hidden cells stay hidden


def test_ci_runs_exactly_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "exec bash tools/test.sh" in ci
