"""The offline docs site (tools/docs.py) without a browser: every notebook becomes a page, nbdev's directives and
hidden cells stay out, exported symbols get their signature with every parameter's docment, broken links fail the
build; and the README is the index notebook. The browser checks are in test_docs_browser.py."""
import inspect
import json
import re
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest
from fastcore.docments import docments

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
try:
    import docs
finally:
    sys.path.pop(0)


class Refs(HTMLParser):
    "The resources a page loads (scripts, stylesheets, images) and its visible text."
    def __init__(self):
        super().__init__()
        self.loads, self.text, self._skip = [], [], 0
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "script" and a.get("src"): self.loads.append(a["src"])
        if tag == "link" and a.get("rel") in ("stylesheet", "preload", "icon"): self.loads.append(a.get("href", ""))
        if tag == "img": self.loads.append(a.get("src", ""))
        if tag in ("script", "style"): self._skip += 1
    def handle_endtag(self, tag):
        if tag in ("script", "style"): self._skip -= 1
    def handle_data(self, data):
        if not self._skip: self.text.append(data)


def parse(page: Path) -> Refs:
    refs = Refs()
    refs.feed(page.read_text(encoding="utf-8"))
    return refs


def raw_cells(stem: str) -> list[dict]:
    return json.loads((ROOT / "nbs" / f"{stem}.ipynb").read_text(encoding="utf-8"))["cells"]


def test_docs_site_builds_offline_in_under_two_minutes(tmp_path):
    start = time.time()
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "docs.py"), str(tmp_path)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    assert time.time() - start < 120, f"building the site took {time.time() - start:.0f} s"
    notebooks = sorted(p.stem for p in docs.notebooks())
    assert sorted(p.stem for p in tmp_path.glob("*.html") if p.name != "404.html") == notebooks
    index = (tmp_path / "index.html").read_text(encoding="utf-8")
    assert set(re.findall(r'href="([\w-]+)\.html"', index)) >= set(notebooks)  # the sidebar reaches every page
    assert "Quick start: two commands" in index  # the home page is the index notebook
    for page in tmp_path.glob("*.html"):
        refs = parse(page)
        text = "".join(refs.text)
        for directive in ("#| export", "#| hide", "#| default_exp", "In&nbsp;[", "In [ ]"):
            assert directive not in text, f"{page.name} shows {directive!r}"
        remote = [u for u in refs.loads if re.match(r"^(https?:)?//", u)]
        assert not remote, f"{page.name} loads {remote}: the site must work with no network"
    assert (tmp_path / "assets" / "mathjax" / "tex-chtml.js").is_file()
    assert (tmp_path / "search" / "search_index.js").is_file()  # search from file:// (Material's offline plugin)
    assert list(tmp_path.glob("*_files/*.png")), "the figures of the notebooks should be on the site"


def test_exported_symbols_are_documented_from_the_code_with_every_docment():
    "The EXP3 page: hidden and exported source gone, and ExpoSelector's parameters carry the comments of its code."
    from expo_nb.exp3 import ExpoSelector
    nb, names = docs.process(ROOT / "nbs" / "12_exp3.ipynb")
    page = docs.page_markdown(nb, "12_exp3", Path("/nonexistent"), {n: "12_exp3" for n in names}, {"12_exp3"})
    assert not re.search(r"^\s*#\|", page, re.M), "an nbdev directive line is left on the page"
    for cell in raw_cells("12_exp3"):
        src = "".join(cell["source"])
        if cell["cell_type"] == "code" and re.match(r"#\|\s*(hide|export|default_exp)\b", src):
            body = "\n".join(line for line in src.splitlines() if not line.startswith("#|")).strip()
            if len(body) > 40: assert body not in page, f"a hidden or exported cell shows its source:\n{body[:200]}"
    assert "ExpoSelector" in names and "ExpoSelector.tell" in names
    doc = page.split("### ExpoSelector {", 1)[1].split("#### ExpoSelector.", 1)[0]
    documented = {k: v["docment"] for k, v in docments(ExpoSelector, full=True).items() if v["docment"]}
    assert documented, "ExpoSelector's parameters should have docments"
    for param, comment in documented.items():
        assert re.search(rf"\b{param}\b.*# {re.escape(comment)}", doc), f"{param}: {comment!r} is not shown"
    sig = inspect.signature(ExpoSelector.tell)
    tell_doc = page.split("#### ExpoSelector.tell {", 1)[1].split("####", 1)[0]
    assert all(p in tell_doc for p in sig.parameters if p != "self")


def test_code_cells_follow_quarto_options_and_show_no_prompt():
    cell = {"cell_type": "code", "source": "#| echo: false\nprint(1)", "execution_count": 7,
            "outputs": [{"output_type": "stream", "name": "stdout", "text": "1\n"}]}
    from fastcore.basics import AttrDict
    md = docs.code_cell_markdown(AttrDict(cell), Path("/nonexistent"), "x")
    assert "print(1)" not in md and "1" in md and "[7]" not in md and "#|" not in md
    cell["source"] = "#| output: false\nprint(1)"
    md = docs.code_cell_markdown(AttrDict(cell), Path("/nonexistent"), "x")
    assert "print(1)" in md and "nb-output" not in md
    assert docs.code_cell_markdown(AttrDict({**cell, "source": "#| include: false\nx = 1"}), Path("/x"), "x") == ""


def test_links_to_notebooks_and_symbols():
    text = "See `11_estimator`, `ExpoSelector` and `ExpoSelector.tell()`, but not `x` or\n```\n`ExpoSelector`\n```"
    linked = docs.link_names(text, {"ExpoSelector": "12_exp3", "ExpoSelector.tell": "12_exp3"},
                             {"11_estimator", "12_exp3"}, here="00_core")
    assert "[`11_estimator`](11_estimator.md)" in linked
    assert "[`ExpoSelector`](12_exp3.md#exposelector)" in linked
    assert "[`ExpoSelector.tell()`](12_exp3.md#exposelector-tell)" in linked
    assert "`x`" in linked and linked.endswith("```\n`ExpoSelector`\n```")  # code blocks are left alone


def test_sidebar_is_index_then_newcomer_path_then_groups():
    stems = ["index", "00_core", "01_cache", "10_domain", "11_estimator", "12_exp3", "20_tasks", "30_runner", "41_x"]
    items = docs.nav({s: s.upper() for s in stems})
    assert items[0] == {"Home": "index.md"}
    assert [list(e.values())[0] for e in items[1]["Start here"]] == \
           [f"{s}.md" for s in docs.NEWCOMER_PATH if s in stems]
    grouped = [list(e.values())[0] for group in items[2:] for e in list(group.values())[0]]
    assert grouped == [f"{s}.md" for s in stems[1:]]  # every notebook once, in file order


def test_a_broken_internal_link_fails_the_build(tmp_path):
    from mkdocs.commands.build import build
    from mkdocs.config import load_config
    from mkdocs.exceptions import Abort
    src = tmp_path / "src"
    src.mkdir()
    def site(link: str):
        (src / "index.md").write_text(f"# Home\n\n## Part\n\nSee [the other page]({link}).\n")
        (src / "other.md").write_text("# Other\n")
        return load_config(str(docs.write_config(src, tmp_path / "site", {"index": "Home", "other": "Other"})))
    build(site("other.md#other"))  # a sound link builds
    for broken in ("missing.md", "other.md#no-such-anchor"):
        with pytest.raises(Abort): build(site(broken))


def test_readme_is_generated_from_the_index_notebook():
    "README.md is tools/readme.py's rendering of nbs/index.ipynb, and it states the two commands."
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import readme
    finally:
        sys.path.pop(0)
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert text == readme.render(), "README.md is stale: run python tools/readme.py"
    assert "bash tools/main.sh" in text and "bash tools/test.sh" in text
    assert "#| hide" not in text and "assert len(selector.history)" not in text  # hidden cells stay hidden


def test_ci_runs_exactly_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    assert ci.rstrip().endswith("exec bash tools/test.sh")
    assert "apt-get install -y" in ci and "chromium" in ci  # the browser for test_docs_browser.py
