"""Write README.md from nbs/index.ipynb without quarto (nbdev_readme needs it; it cannot be installed here).

`python tools/readme.py` renders the index notebook with nbconvert's Markdown exporter after dropping
`#| hide` cells and the `#|` directive lines; `python tools/readme.py --check` exits 1 when README.md is stale.
"""
import sys
from pathlib import Path

import nbformat
from nbconvert import MarkdownExporter

ROOT = Path(__file__).resolve().parents[1]
HEADER = "<!-- generated from nbs/index.ipynb by tools/readme.py; edit the notebook, not this file -->\n\n"

def _merge_streams(outputs: list) -> list:
    "Join consecutive outputs of the same stream, so a loop of prints reads as one block."
    merged = []
    for output in outputs:
        if merged and output.get("output_type") == "stream" and merged[-1].get("output_type") == "stream" \
                and merged[-1].get("name") == output.get("name"):
            merged[-1]["text"] += output["text"]
        else: merged.append(output)
    return merged

def render(notebook: Path = ROOT / "nbs" / "index.ipynb") -> str:
    "README text for the index notebook: markdown cells, visible code cells and their text outputs."
    nb = nbformat.read(notebook, as_version=4)
    kept = []
    for cell in nb.cells:
        lines = cell.source.splitlines()
        if cell.cell_type == "code" and any(line.strip() in ("#| hide", "#|hide") for line in lines): continue
        if cell.cell_type == "code":
            cell.source = "\n".join(line for line in lines if not line.startswith("#|")).strip()
        if cell.cell_type == "code": cell.outputs = _merge_streams(cell.get("outputs", []))
        kept.append(cell)
    nb.cells = kept
    nb.metadata["language_info"] = {"name": "python"}  # fenced code blocks get the language
    body, _ = MarkdownExporter().from_notebook_node(nb)
    text = "\n".join(line.rstrip() for line in body.strip().splitlines()) + "\n"
    while "\n\n\n" in text: text = text.replace("\n\n\n", "\n\n")
    return HEADER + text

if __name__ == "__main__":
    text, readme = render(), ROOT / "README.md"
    if "--check" in sys.argv:
        if readme.read_text(encoding="utf-8") != text: sys.exit("README.md is stale: run python tools/readme.py")
        print("README.md is up to date")
    else:
        readme.write_text(text, encoding="utf-8"); print(f"wrote {readme}")
