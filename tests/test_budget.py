"""Planning and budgets (issue 12): `expo run --dry-run` sends nothing and prints what a run would send;
`--max-tokens-total` stops a run cleanly after the iteration that reaches it, and a larger budget resumes it to the
records of an uninterrupted run."""
import json

from typer.testing import CliRunner

from expo_nb.cli import app
from expo_nb.config import get_preset
from expo_nb.rundir import read_log
from expo_nb.runner import plan_run

cli = CliRunner()


def run_args(tmp_path, out: str) -> list[str]:
    variants = tmp_path / "variants.json"
    variants.write_text(json.dumps({"descriptions": ["Fit a line.", "Find w and b."], "instructions": ["Answer."]}))
    return ["run", "linreg-quick", "--out", str(tmp_path / out), "--llm", "scripted", "--embedder", "hashing:16",
            "--domain", str(variants), "--iterations", "4", "--samples", "2", "--seed", "3", "--no-progress"]


def without_time(records):
    return [{k: v for k, v in r.items() if k != "wall_s"} for r in records]


def test_a_budget_of_one_token_stops_after_the_first_iteration_and_a_larger_one_resumes(tmp_path):
    whole = cli.invoke(app, run_args(tmp_path, "whole"))
    assert whole.exit_code == 0, whole.output
    stopped = cli.invoke(app, run_args(tmp_path, "budget") + ["--max-tokens-total", "1"])
    assert stopped.exit_code == 3 and "stopped: token budget reached" in stopped.output
    assert "rerun with a larger --max-tokens-total" in stopped.output and "Traceback" not in stopped.output
    assert len(read_log(tmp_path / "budget" / "log.jsonl")) == 1
    assert not (tmp_path / "budget" / "summary.json").exists()
    again = cli.invoke(app, run_args(tmp_path, "budget") + ["--max-tokens-total", "1"])
    assert again.exit_code == 3 and len(read_log(tmp_path / "budget" / "log.jsonl")) == 1   # nothing more is spent
    resumed = cli.invoke(app, run_args(tmp_path, "budget") + ["--max-tokens-total", "100000000"])
    assert resumed.exit_code == 0 and "finished 4 iterations" in resumed.output
    assert without_time(read_log(tmp_path / "budget" / "log.jsonl")) == \
        without_time(read_log(tmp_path / "whole" / "log.jsonl"))


def test_dry_run_prints_calls_and_tokens_per_model_and_writes_nothing(tmp_path):
    out = tmp_path / "never"
    result = cli.invoke(app, ["run", "tsp10-paper", "--dry-run", "--out", str(out), "--llm", "openai:gpt-3.5-turbo",
                              "--rephraser", "openai:gpt-4", "--embedder", "openai:text-embedding-3-large"],
                        env={"OPENAI_API_KEY": ""})
    assert result.exit_code == 0, result.output                   # no key needed: nothing is sent
    assert not out.exists()
    lines = result.output.splitlines()
    agent = next(line for line in lines if line.startswith("agent"))
    assert "openai:gpt-3.5-turbo" in agent and " 800 " in agent   # 100 iterations x 8 samples
    rephraser = next(line for line in lines if line.startswith("rephraser"))
    assert "openai:gpt-4" in rephraser and " 200 " in rephraser   # 100 descriptions + 100 instructions


def test_the_plan_follows_the_method_arms():
    config = get_preset("linreg-paper")
    roles = {name: [row["role"] for row in plan_run(config.__class__(**{**config.__dict__, "method": name}))]
             for name in ("expo", "opro", "expo-d-only")}
    assert roles == {"expo": ["agent", "rephraser", "embedder"], "opro": ["agent", "embedder"],
                     "expo-d-only": ["agent", "rephraser", "embedder"]}
    d_only = plan_run(config.__class__(**{**config.__dict__, "method": "expo-d-only"}))
    assert d_only[1]["calls"] == config.k_descriptions


def test_the_plan_matches_a_short_scripted_run_within_ten_percent(tmp_path):
    "Calls exactly; prompt tokens within 10% when the plan counts tokens as the model does (words, ScriptedChat)."
    from expo_nb.config import RunConfig
    from expo_nb.embed import HashingEmbedder
    from expo_nb.runner import run
    from expo_nb.testing import ScriptedChat

    def proposer(request):   # a new valid pair for every sample, as the plan assumes
        proposer.count += 1
        return f"[{proposer.count}, {2 * proposer.count}]"
    proposer.count = 0
    from expo_nb.config import build_task
    original = build_task(RunConfig())     # the arms are rephrasings of the original texts: the plan counts those
    variants = tmp_path / "variants.json"
    variants.write_text(json.dumps({"descriptions": [original.description0.text],
                                    "instructions": [original.instruction0.text]}))
    config = RunConfig(iterations=4, samples=3, domain=str(variants), embedder="hashing:16", llm="scripted")
    summary = run(config, tmp_path / "run", chat=ScriptedChat(proposer), embedder=HashingEmbedder(16), progress=False)
    agent = plan_run(config, count_tokens=lambda text: len(text.split()))[0]
    assert agent["calls"] == proposer.count == 12
    assert abs(agent["prompt_tokens"] - summary["prompt_tokens"]) <= 0.1 * summary["prompt_tokens"], \
        (agent["prompt_tokens"], summary["prompt_tokens"])
