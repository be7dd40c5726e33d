"""Write the hand-written domain of open check (c): EXPO on a domain nobody rephrased with an LLM, of the same size
as the rephrased one (101 x 101), for linear regression. Each description is one of ten goal sentences followed by
one of ten sentences about the listed history; each instruction is one of ten requests followed by one of ten
constraints, all written by hand for this check. With the task's own original first, that gives 1 + 10 x 10 texts
per part. `python tools/handwritten_domain.py` rewrites nbs/results/paper/domains/linreg-handwritten/variants.json.
"""
import itertools
import json
import sys
from pathlib import Path

GOALS = (
    "You are searching for the pair of numbers (w, b) at which a function f(w, b) takes its lowest value.",
    "The task: choose two numbers w and b so that the function f(w, b) is as small as it can be.",
    "We want to minimize a function f of two numbers, w and b.",
    "Help find the values of w and b that give the smallest possible f(w, b).",
    "Two unknowns, w and b, control a function f(w, b); the aim is to drive f as low as it goes.",
    "Find the input pair (w, b) with the minimum value of the function f(w, b).",
    "This is a minimization problem over two numbers, w and b: a smaller f(w, b) is better.",
    "Your job is to locate the pair (w, b) where the function f(w, b) is lowest.",
    "Search for numbers w and b that bring the function f(w, b) down to its minimum.",
    "An unknown function f(w, b) scores every pair of numbers (w, b); look for the pair with the lowest score.",
)
HISTORIES = (
    "Below are pairs (w, b) that were already tried, each with its value f(w, b), sorted from the highest value to "
    "the lowest.",
    "The pairs tried so far are listed below with their values, in descending order of f(w, b); lower is better.",
    "Earlier attempts appear below, each pair followed by its f(w, b), ordered so that the best (lowest) value comes "
    "last.",
    "Here is the history of evaluated pairs and their function values, from worst to best.",
    "Each line below is a pair (w, b) that has been evaluated and the value f(w, b) it got; the list goes from large "
    "values to small ones.",
    "The list that follows holds past guesses (w, b) with their values, sorted by value in decreasing order; smaller "
    "is preferable.",
    "You can see previous pairs and their values below, arranged from the highest f(w, b) down to the lowest.",
    "What has been tried so far is shown below: pairs (w, b) with their f(w, b), in descending order of value.",
    "Past evaluations follow, one pair per line with its value; they are ranked from worst (highest) to best "
    "(lowest).",
    "Below, the pairs evaluated so far are listed with the value of f at each, highest value first and lowest last.",
)
REQUESTS = (
    "Propose one new pair (w, b)",
    "Give a single new pair (w, b)",
    "Suggest exactly one more pair (w, b)",
    "Write down one new candidate pair (w, b)",
    "Offer one further pair (w, b)",
    "Name one more pair (w, b) worth trying",
    "Provide one fresh pair of numbers (w, b)",
    "Reply with one new pair (w, b)",
    "Choose one pair (w, b)",
    "Come up with one more pair (w, b)",
)
CONSTRAINTS = (
    "that is not in the list and whose value should be lower than all values shown. Do not write code.",
    "that differs from every pair above and that you expect to beat every listed value. Do not write any code.",
    "not already listed, with a value you believe is below the lowest one so far. Answer without code.",
    "that has not been tried yet and is likely to give a smaller f(w, b) than any pair above. No code, please.",
    "different from the pairs shown, aiming for a value under all of theirs. Do not produce code.",
    "that is new and whose f(w, b) you anticipate to be the smallest yet. Give only the pair, no code.",
    "absent from the list, chosen so that its value should undercut every value above. Do not write a program.",
    "which is not among the previous ones and should score lower than all of them. Write no code.",
    "that does not repeat any listed pair and that you predict to improve on the best value. Do not write code.",
    "outside the given list, expected to reach a value below every value shown. Avoid writing code.",
)


def variants(description: str, instruction: str) -> dict:
    "The task's originals first, then every goal x history and request x constraint combination."
    return {"descriptions": [description] + [f"{g} {h}" for g, h in itertools.product(GOALS, HISTORIES)],
            "instructions": [instruction] + [f"{r} {c}" for r, c in itertools.product(REQUESTS, CONSTRAINTS)]}


def main(out: Path) -> None:
    from expo_nb.config import build_task, get_preset
    task = build_task(get_preset("linreg-paper"))
    data = variants(task.description0.text, task.instruction0.text)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data, indent=1) + "\n")
    print(f"wrote {out}: {len(data['descriptions'])} x {len(data['instructions'])}")


if __name__ == "__main__":
    root = Path(__file__).resolve().parents[1]
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else
         root / "nbs" / "results" / "paper" / "domains" / "linreg-handwritten" / "variants.json")
