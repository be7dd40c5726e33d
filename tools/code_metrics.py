#!/usr/bin/env python3
"""Readability gates of the literate source (issue 14), measured with `ast` and `json` over nbs/ and expo_nb/.

Prints one table and exits 1 when a gate fails (`--report` prints without failing). Measured:
- long lines: share of non-blank code lines of the exported modules over 120 characters (gate: under 1%);
- export cells: non-blank lines of each `#| export` cell, directives not counted (gates: none over 40, at most 5
  over 25);
- forward references: a public name exported by a notebook and used in an earlier cell of the same notebook,
  in code run at that point or in a function body (gate: none);
- shown working: share of exported public functions and classes used (by name, or as an attribute for methods
  added with `@patch`) in a non-export code cell before the next export cell of their notebook (gate: >= 70%).
`--detail` lists the offenders of each gate.
"""
import argparse
import ast
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIMITS = {"long_line_share": 0.01, "max_cell_lines": 40, "cells_over_25": 5, "forward_refs": 0, "shown_share": 0.70}


def code_cells(path: Path) -> list[tuple[bool, str]]:
    "(is_export, source) of each code cell; magics and shell lines are dropped so that `ast` can parse the rest."
    cells = []
    for cell in json.loads(path.read_text())["cells"]:
        if cell["cell_type"] != "code":
            continue
        text = "".join(cell["source"])
        lines = text.splitlines()
        directives = [line.replace(" ", "") for line in lines if line.startswith("#|")]
        export = any(d.startswith(("#|export", "#|exports", "#|exporti")) for d in directives)
        body = "\n".join(line for line in lines if not line.lstrip().startswith(("%", "!")))
        cells.append((export, body))
    return cells


def cell_lines(source: str) -> int:
    "Non-blank lines of a cell without its `#|` directives."
    return sum(1 for line in source.splitlines() if line.strip() and not line.startswith("#|"))


def parse(source: str) -> ast.Module | None:
    try:
        return ast.parse(source)
    except SyntaxError:
        return None


def defined_names(tree: ast.Module) -> set[str]:
    "Public functions, classes and assigned constants at the top level of a cell."
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(t.id for t in targets if isinstance(t, ast.Name))
    return {name for name in names if not name.startswith("_")}


def callables(tree: ast.Module) -> set[str]:
    "Public functions and classes defined at the top level of a cell."
    kinds = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    return {node.name for node in tree.body if isinstance(node, kinds) and not node.name.startswith("_")}


def used_names(tree: ast.Module) -> set[str]:
    return {node.id for node in ast.walk(tree) if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)}


def attribute_names(tree: ast.Module) -> set[str]:
    "Attributes read in a cell: a method added with `@patch` is shown working by `obj.method(...)`."
    return {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)}


def bound_names(tree: ast.Module) -> set[str]:
    "Names a cell binds itself (assignments, parameters, loop targets): a use of those is not a forward reference."
    names = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store)}
    return names | {node.arg for node in ast.walk(tree) if isinstance(node, ast.arg)}


def notebook_metrics(path: Path) -> dict:
    cells = [(export, source, parse(source)) for export, source in code_cells(path)]
    big, forward, shown, unshown = [], [], [], []
    first_definition = {}
    for index, (export, source, tree) in enumerate(cells):
        if export and tree is not None:
            for name in defined_names(tree):
                first_definition.setdefault(name, index)
            if cell_lines(source) > 25:
                big.append((path.stem, index, cell_lines(source)))
    for index, (export, source, tree) in enumerate(cells):
        if tree is None:
            continue
        for name in (used_names(tree) - bound_names(tree)) & first_definition.keys():
            if first_definition[name] > index:
                forward.append((path.stem, index, name))
    for index, (export, source, tree) in enumerate(cells):
        if not export or tree is None:
            continue
        later = []
        for e, s, t in cells[index + 1:]:
            if e:
                break
            if t is not None:
                later.append(t)
        used = set().union(*(used_names(t) | attribute_names(t) for t in later)) if later else set()
        for name in sorted(callables(tree)):
            (shown if name in used else unshown).append((path.stem, index, name))
    return {"big": big, "forward": sorted(set(forward)), "shown": shown, "unshown": unshown,
            "cell_sizes": [cell_lines(s) for e, s, t in cells if e]}


def long_lines(package: Path) -> tuple[int, int, list]:
    total, offenders = 0, []
    for module in sorted(package.glob("*.py")):
        if module.name == "_modidx.py":
            continue
        for number, line in enumerate(module.read_text().splitlines(), 1):
            if line.strip() and not (number == 1 or line.startswith(("# AUTOGENERATED", "# %% "))):   # nbdev's header
                total += 1
                if len(line) > 120:
                    offenders.append((module.name, number, len(line)))
    return total, len(offenders), offenders


def measure(root: Path = ROOT) -> dict:
    per_notebook = [notebook_metrics(p) for p in sorted((root / "nbs").glob("[0-9]*.ipynb"))]
    merged = {key: [item for m in per_notebook for item in m[key]] for key in per_notebook[0]}
    total, over, offenders = long_lines(root / "expo_nb")
    sizes = merged["cell_sizes"]
    n_callables = len(merged["shown"]) + len(merged["unshown"])
    return {"code_lines": total, "long_lines": over, "long_line_share": over / max(total, 1),
            "export_cells": len(sizes), "max_cell_lines": max(sizes), "cells_over_25": len(merged["big"]),
            "mean_cell_lines": sum(sizes) / len(sizes), "forward_refs": len(merged["forward"]),
            "exported_callables": n_callables, "shown_share": len(merged["shown"]) / max(n_callables, 1),
            "detail": {"long": offenders, "big": merged["big"], "forward": merged["forward"],
                       "unshown": merged["unshown"]}}


def gates(m: dict) -> list[tuple[str, str, str, bool]]:
    return [("long lines (share of code lines)", f"{m['long_line_share']:.2%} ({m['long_lines']})", "< 1%",
             m["long_line_share"] < LIMITS["long_line_share"]),
            ("largest export cell (lines)", str(m["max_cell_lines"]), "<= 40", m["max_cell_lines"] <= 40),
            ("export cells over 25 lines", str(m["cells_over_25"]), "<= 5", m["cells_over_25"] <= 5),
            ("forward references", str(m["forward_refs"]), "0", m["forward_refs"] == 0),
            ("exported callables shown before the next export", f"{m['shown_share']:.0%}", ">= 70%",
             m["shown_share"] >= LIMITS["shown_share"])]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--report", action="store_true", help="print only; never fail")
    parser.add_argument("--detail", action="store_true", help="list the offenders of each gate")
    args = parser.parse_args()
    m = measure()
    print(f"{m['export_cells']} export cells (mean {m['mean_cell_lines']:.1f} lines), {m['code_lines']} code lines, "
          f"{m['exported_callables']} exported functions and classes")
    print(f"{'gate':50} {'measured':>14} {'limit':>8}  ok")
    rows = gates(m)
    for name, value, limit, ok in rows:
        print(f"{name:50} {value:>14} {limit:>8}  {'yes' if ok else 'NO'}")
    if args.detail:
        for key, items in m["detail"].items():
            print(f"\n{key}:")
            for item in items:
                print("  ", *item)
    return 0 if args.report or all(ok for *_, ok in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
