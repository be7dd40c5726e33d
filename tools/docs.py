"""Build the documentation site from the notebooks, offline: `python tools/docs.py [OUT_DIR]` (default `_docs/`).

Why this generator. nbdev's own site (`nbdev_docs`) is rendered by quarto, which cannot be installed here, so the
site is built by MkDocs with the Material theme, both plain PyPI packages: Material gives the sidebar, a per-page
table of contents, client-side full-text search and an `offline` plugin that makes the built folder work when
opened straight from disk. Notebooks reach it as ordinary Markdown pages (the same route nbdev takes to quarto),
so code highlighting, search and the math extension treat them exactly like hand-written pages; mkdocs-jupyter
and Sphinx with myst-nb were the alternatives, but both embed nbconvert's HTML (prompts, a CDN math script) or
need a second markup layer for the API reference. Where quarto is installed `nbdev_docs` still works unchanged.

The pipeline, one step per function below:
1. each notebook goes through nbdev's own notebook processors (those `nbdev_proc_nbs` runs before quarto):
   `#| hide` cells and exported source are dropped, nbdev directive lines removed, and a `show_doc` cell is
   inserted after every exported definition;
2. each `show_doc` cell becomes the symbol's signature with every parameter's docment, rendered by fastcore's
   `MarkdownRenderer` (what nbdev's `show_doc` uses) from the installed `expo_nb` module, so it is generated
   from the code and never written twice;
3. the processed notebook is written as one Markdown page (code fenced, text outputs fenced as output, figures
   as image files, no execution counts); backticked notebook names and exported symbols become links;
4. `mkdocs build` runs with `strict: true` (a broken internal link or anchor fails the build), with MathJax 3
   copied from the `django-static-mathjax` PyPI package into the site, so formulas render with no network.
The base configuration is `tools/mkdocs.yml`; the generated config and Markdown sources are in `_proc/_mkdocs/`
(`mkdocs serve -f _proc/_mkdocs/mkdocs.yml` previews them).
"""
import base64
import logging
import os
import re
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NBS, PROC = ROOT / "nbs", ROOT / "_proc"
NEWCOMER_PATH = ["00_core", "10_domain", "11_estimator", "12_exp3", "13_expo_es", "20_tasks", "21_task_linreg",
                 "30_runner"]  # the short reading path for a newcomer, after the index
GROUPS = {"0": "Foundations", "1": "Algorithms", "2": "Tasks", "3": "Running experiments",
          "4": "Reproducing the paper", "9": "About these docs"}  # notebooks grouped by their first digit
ANSI = re.compile(r"\x1B(?:[@-Z\\-_]|\[[0-?]*[ -/]*[@-~])")


def notebooks() -> list[Path]:
    "The notebooks that become pages: every `nbs/*.ipynb` not starting with `_`, index first."
    paths = sorted(p for p in NBS.glob("*.ipynb") if not p.name.startswith("_"))
    return sorted(paths, key=lambda p: p.stem != "index")


def title_and_subtitle(nb) -> tuple[str, str]:
    "The notebook's `# Title` and `> subtitle` lines, as nbdev reads them."
    for cell in nb.cells:
        if cell.cell_type != "markdown": continue
        lines = cell.source.splitlines()
        title = next((line[2:].strip() for line in lines if line.startswith("# ")), None)
        if title:
            subtitle = next((line[1:].strip() for line in lines if line.startswith(">")), "")
            return title, subtitle
    return "", ""


# ---- step 1 and 2: nbdev's processors, then show_doc from the installed module ----

def anchor(name: str) -> str:
    "The HTML id of a documented symbol's heading: `ExpoSelector.tell` -> `exposelector-tell`."
    return re.sub(r"[^a-z0-9_-]+", "-", name.lower()).strip("-")


def public_methods(cls) -> list[str]:
    "Names of the public methods a class defines itself (not inherited), in definition order."
    import inspect
    return [n for n, v in vars(cls).items() if not n.startswith("_") and inspect.isfunction(v)]


def show_doc_markdown(name: str, namespace: dict) -> tuple[str, list[str]]:
    """Heading, signature with every parameter's docment and docstring of `name` (fastcore's renderer, as nbdev's
    `show_doc`), followed by those of a class's public methods; also the names documented."""
    from fastcore.docments import MarkdownRenderer
    try: obj = eval(name, namespace)
    except (NameError, AttributeError):  # the notebook is ahead of the module: say so on the page, build on
        logging.getLogger("docs").warning(f"{name} is not in {namespace.get('__name__')}: run nbdev_export")
        note = "*Not in the installed module yet: run `nbdev_export`.*"
        return f"### {name} {{ #{anchor(name)} .doc-heading }}\n\n{note}", [name]
    names, parts = [name], []
    names += [f"{name}.{m}" for m in public_methods(obj)] if isinstance(obj, type) else []
    for nm in names:
        level = "####" if "." in nm else "###"
        body = MarkdownRenderer(eval(nm, namespace), name=nm)._repr_markdown_()
        parts.append(f"{level} {nm} {{ #{anchor(nm)} .doc-heading }}\n\n{body}")
    return "\n\n".join(parts), names


def default_module(nb) -> str | None:
    "The module a notebook exports to (`#| default_exp NAME` -> `expo_nb.NAME`), or None."
    for cell in nb.cells:
        found = re.search(r"^\s*#\|\s*default_exp\s+(\S+)", cell.source, re.M) if cell.cell_type == "code" else None
        if found: return f"expo_nb.{found.group(1)}"
    return None


def render_show_docs(nb, module: str | None) -> list[str]:
    "Turn every `show_doc(name)` code cell into a markdown cell with its documentation; return the names."
    import importlib

    from execnb.nbio import mk_cell
    namespace = vars(importlib.import_module(module)) if module else {}
    names = []
    for i, cell in enumerate(nb.cells):
        found = re.fullmatch(r"\s*show_doc\(([\w.]+)\)\s*", cell.source) if cell.cell_type == "code" else None
        if not found or not namespace: continue
        text, documented = show_doc_markdown(found.group(1), namespace)
        names += documented
        nb.cells[i] = mk_cell(text, "markdown")
    return names


def process(path: Path):
    "The notebook after nbdev's documentation processors and show_doc rendering; also its documented names."
    from execnb.nbio import read_nb
    from nbdev import processors as P
    from nbdev.process import NBProcessor
    nb = read_nb(path)
    module = default_module(nb)
    procs = [P.populate_language, P.add_show_docs, P.strip_ansi, P.hide_line, P.filter_stream_, P.rm_header_dash,
             P.rm_export, P.clean_magics, P.hide_, P.mv_exports, P.strip_hidden_metadata]
    NBProcessor(nb=nb, procs=procs, process=True)
    return nb, render_show_docs(nb, module)


# ---- step 3: one Markdown page per processed notebook ----

def quarto_options(cell) -> tuple[dict, str]:
    "The `#| key: value` options left on a code cell (echo, output, include, ...) and the source without them."
    options, code = {}, []
    for line in cell.source.splitlines():
        found = re.match(r"^\s*#\|\s*([\w-]+)\s*:\s*(.*)$", line)
        if found: options[found.group(1)] = found.group(2).strip().lower()
        elif not re.match(r"^\s*#\|", line): code.append(line)
    return options, "\n".join(code).strip()


def fenced(text: str, lang: str, cls: str = "") -> str:
    "A fenced block that no backtick run inside `text` can close early."
    fence = "`" * max(3, max((len(r) for r in re.findall(r"`+", text)), default=0) + 1)
    attrs = f"{{ .{lang} .{cls} }}" if cls else lang
    return f"{fence}{attrs}\n{text.rstrip()}\n{fence}"


def output_markdown(out: dict, files: Path, stem: str) -> str:
    "One cell output as Markdown: figures become files under `files`, text becomes an output block."
    kind = out.get("output_type")
    if kind == "stream": return fenced(ANSI.sub("", "".join(out.get("text", ""))), "text", "nb-output")
    if kind == "error": return fenced(ANSI.sub("", "\n".join(out.get("traceback", []))), "text", "nb-output")
    data = out.get("data", {})
    for mime, ext in (("image/png", "png"), ("image/jpeg", "jpg"), ("image/svg+xml", "svg")):
        if mime in data:
            raw = "".join(data[mime])
            image = files / f"{stem}_{len(list(files.glob('*'))) if files.exists() else 0}.{ext}"
            image.parent.mkdir(parents=True, exist_ok=True)
            image.write_bytes(raw.encode() if ext == "svg" else base64.b64decode(raw))
            return f"![figure]({files.name}/{image.name}){{ .nb-figure }}"
    if "text/html" in data:
        html = "\n".join(line for line in "".join(data["text/html"]).splitlines() if line.strip())
        return f'<div class="nb-output nb-html" markdown="0">\n{html}\n</div>'
    if "text/markdown" in data: return "".join(data["text/markdown"])
    if "text/latex" in data: return "".join(data["text/latex"])
    if "text/plain" in data: return fenced("".join(data["text/plain"]), "text", "nb-output")
    return ""


def code_cell_markdown(cell, files: Path, stem: str) -> str:
    "A code cell as Markdown, honouring quarto's echo/output/include options; no execution count."
    options, code = quarto_options(cell)
    if options.get("include") == "false": return ""
    parts = [fenced(code, "python")] if code and options.get("echo") != "false" else []
    if options.get("output") != "false":
        parts += [output_markdown(o, files, stem) for o in cell.get("outputs", [])]
    return "\n\n".join(p for p in parts if p)


def link_names(text: str, symbols: dict[str, str], pages: set[str], here: str) -> str:
    "Backticked notebook names and documented symbols outside code blocks become links to their page."
    def link(found):
        name = found.group(1)
        if name in pages and name != here: return f"[`{name}`]({name}.md)"
        if name.rstrip("()") in symbols:
            page = symbols[name.rstrip("()")]
            return f"[`{name}`]({'' if page == here else page + '.md'}#{anchor(name.rstrip('()'))})"
        return found.group(0)
    parts = re.split(r"(^```.*?^```[ \t]*$)", text, flags=re.M | re.S)
    span = re.compile(r"(?<![`\[])`(\w[\w.]*(?:\(\))?)`(?![`\]])")
    return "".join(p if p.startswith("```") else span.sub(link, p) for p in parts)


def markdown_cell(cell, symbols: dict, pages: set, here: str) -> str:
    "A markdown cell, with links to other notebooks (`NAME.ipynb` -> `NAME.md`) and to documented symbols."
    text = re.sub(r"\]\((\w+)\.ipynb(#[\w-]*)?\)", r"](\1.md\2)", cell.source)
    return text if "doc-heading" in text else link_names(text, symbols, pages, here)


def page_markdown(nb, stem: str, out_dir: Path, symbols: dict, pages: set) -> str:
    "The whole page: every kept cell in order."
    files = out_dir / f"{stem}_files"
    blocks = [markdown_cell(c, symbols, pages, stem) if c.cell_type == "markdown"
              else code_cell_markdown(c, files, stem) for c in nb.cells]
    return "\n\n".join(b.strip("\n") for b in blocks if b.strip()) + "\n"


# ---- step 4: the MkDocs site ----

def nav(titles: dict[str, str]) -> list:
    "The sidebar: the index, the newcomer path, then every notebook by group, in file order."
    entry = lambda stem: {titles[stem]: f"{stem}.md"}
    items = [{"Home": "index.md"}, {"Start here": [entry(s) for s in NEWCOMER_PATH if s in titles]}]
    for digit, group in GROUPS.items():
        stems = [s for s in titles if s != "index" and s[0] == digit]
        if stems: items.append({group: [entry(s) for s in stems]})
    rest = [s for s in titles if s != "index" and s[0] not in GROUPS]
    if rest: items.append({"Other": [entry(s) for s in rest]})
    return items


def copy_mathjax(docs: Path):
    "MathJax 3 (Apache-2.0) from the django-static-mathjax package: the TeX+CHTML bundle, its fonts, TeX extensions."
    import importlib.resources
    src = Path(str(importlib.resources.files("mathjax"))) / "static" / "mathjax"
    dst = docs / "assets" / "mathjax"
    for part in ("es5/tex-chtml.js", "es5/output/chtml/fonts/woff-v2", "es5/input/tex/extensions", "LICENSE"):
        target = dst / part.removeprefix("es5/")
        target.parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if (src / part).is_dir() else shutil.copy)(src / part, target)


def write_config(docs: Path, out_dir: Path, titles: dict) -> Path:
    "The MkDocs config: tools/mkdocs.yml plus the generated nav and the source and output folders."
    import yaml
    config = yaml.safe_load((ROOT / "tools" / "mkdocs.yml").read_text(encoding="utf-8"))
    config.update(docs_dir=str(docs), site_dir=str(out_dir), nav=nav(titles))
    path = docs.parent / "mkdocs.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def tolerate_marked_sections():
    """mkdocs 1.6.1 scans every page's Markdown for raw-HTML ids with Python's HTML parser, which raises on `<![`
    (Python bug gh-77057, fixed in 3.13), e.g. the regex `(?<![A-Za-z])` in code; Python-Markdown itself already
    works around it. Such a page is scanned again with that sequence masked (the page itself is unchanged)."""
    from mkdocs.structure import pages
    scan = pages._RawHTMLPreprocessor.run
    if getattr(scan, "tolerant", False): return
    def tolerant(self, lines):
        try: return scan(self, lines)
        except AssertionError:
            scan(self, [line.replace("<![", "&lt;![") for line in lines])
            return lines
    tolerant.tolerant = True
    pages._RawHTMLPreprocessor.run = tolerant


def build(out_dir: Path = ROOT / "_docs", workers: int = 2) -> list[Path]:
    "Process every notebook, write the Markdown sources to `_proc/_mkdocs/docs/`, build the site into `out_dir`."
    from mkdocs.commands.build import build as mkdocs_build
    from mkdocs.config import load_config
    shutil.rmtree(PROC / "_mkdocs", ignore_errors=True)  # quarto (nbdev_docs renders _proc/) skips `_` folders
    docs = PROC / "_mkdocs" / "docs"
    (docs / "assets").mkdir(parents=True)
    paths = notebooks()
    with ProcessPoolExecutor(workers) as pool: processed = list(pool.map(process, paths))
    symbols = {name: p.stem for p, (_, names) in zip(paths, processed) for name in names}
    pages, titles = {p.stem for p in paths}, {}
    for path, (nb, _) in zip(paths, processed):
        titles[path.stem] = title_and_subtitle(nb)[0] or path.stem
        (docs / f"{path.stem}.md").write_text(page_markdown(nb, path.stem, docs, symbols, pages), encoding="utf-8")
    copy_mathjax(docs)
    shutil.copytree(ROOT / "tools" / "docs_assets", docs / "assets", dirs_exist_ok=True)
    shutil.rmtree(out_dir, ignore_errors=True)
    tolerate_marked_sections()
    mkdocs_build(load_config(str(write_config(docs, out_dir.resolve(), titles))))
    return [out_dir / f"{p.stem}.html" for p in paths]


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    start, out = time.time(), Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "_docs"
    pages = build(out)
    print(f"wrote {len(pages)} pages to {out} in {time.time() - start:.0f} s")
