"""Render the notebooks to a static HTML site without quarto (which cannot be installed offline here).

`python tools/docs.py [OUT_DIR]` writes one HTML page per notebook (with its stored outputs, so figures
show); index.html is the index notebook (the README's source) followed by the list of notebooks in reading
order with each notebook's title and subtitle.
Where quarto is installed, `nbdev_docs` renders the richer nbdev site from the same notebooks instead.
"""
import html, json, sys
from pathlib import Path
import nbformat
from nbconvert import HTMLExporter

ROOT = Path(__file__).resolve().parents[1]

def title_and_subtitle(nb) -> tuple[str, str]:
    "The notebook's `# Title` and `> subtitle` lines, as nbdev reads them."
    for cell in nb.cells:
        if cell.cell_type != "markdown": continue
        lines = cell.source.splitlines()
        title = next((l[2:].strip() for l in lines if l.startswith("# ")), None)
        if title:
            subtitle = next((l[1:].strip() for l in lines if l.startswith(">")), "")
            return title, subtitle
    return "", ""

def build(out_dir: Path) -> list[Path]:
    "Render every notebook in nbs/ (not starting with `_`) to out_dir; return the pages written."
    out_dir.mkdir(parents=True, exist_ok=True)
    exporter, pages, rows = HTMLExporter(template_name="lab"), [], []
    for path in sorted((ROOT / "nbs").glob("*.ipynb")):
        if path.name.startswith("_") or path.stem == "index": continue
        nb = nbformat.read(path, as_version=4)
        body, _ = exporter.from_notebook_node(nb)
        page = out_dir / (path.stem + ".html")
        page.write_text(body, encoding="utf-8")
        pages.append(page)
        title, subtitle = title_and_subtitle(nb)
        rows.append(f'<li><a href="{page.name}">{html.escape(title or path.stem)}</a> '
                    f'<small>({path.name})</small><br>{html.escape(subtitle)}</li>')
    contents = ("<h2>Notebooks</h2><p>The notebooks of expo_nb in reading order, rendered with their outputs."
                "</p><ol>" + "\n".join(rows) + "</ol>")
    home = ROOT / "nbs" / "index.ipynb"
    if home.exists():  # the home page is the index notebook, followed by the table of contents
        body, _ = exporter.from_notebook_node(nbformat.read(home, as_version=4))
        index = body.replace("</body>", contents + "</body>", 1)
    else:
        index = ("<!doctype html><html><head><meta charset='utf-8'><title>expo_nb</title></head><body>"
                 "<h1>expo_nb documentation</h1>" + contents + "</body></html>")
    (out_dir / "index.html").write_text(index, encoding="utf-8")
    return pages

if __name__ == "__main__":
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "_docs"
    pages = build(out)
    print(f"wrote {len(pages)} pages and index.html to {out}")
