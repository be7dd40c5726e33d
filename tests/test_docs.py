"""The offline docs site: every notebook becomes a page with its outputs, and the index links them all."""
import re, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

def test_docs_site_builds_offline(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "docs.py"), str(tmp_path)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    notebooks = sorted(p.stem for p in (ROOT / "nbs").glob("*.ipynb") if not p.name.startswith("_"))
    pages = sorted(p.stem for p in tmp_path.glob("*.html") if p.name != "index.html")
    assert pages == notebooks
    index = (tmp_path / "index.html").read_text()
    assert sorted(re.findall(r'href="([^"]+)\.html"', index)) == notebooks
    core = (tmp_path / "00_core.html").read_text()
    assert "Core types" in core and "ExpoError" in core
