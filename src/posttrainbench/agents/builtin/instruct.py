"""`instruct`: submits the family's official instruct model (the instruct baseline of the leaderboard;
the lineage check flags it, as it should, and the aggregation reads baselines unsubstituted)."""

from transformers import AutoModelForCausalLM, AutoTokenizer

from posttrainbench import models
from posttrainbench.agents.builtin.contract import AgentInputs


def main() -> None:
    inputs = AgentInputs.from_env()
    card = next(c for c in models.MODELS.values() if c.hub_id == inputs.model)
    twin = card.instruct_twin
    if not twin:
        raise SystemExit(f"{card.name} has no instruct twin to submit")
    out = inputs.workspace / "final_model"
    AutoModelForCausalLM.from_pretrained(twin, local_files_only=True).save_pretrained(out)
    AutoTokenizer.from_pretrained(twin, local_files_only=True).save_pretrained(out)
    print(f"saved the instruct model {twin} unchanged to {out}")


if __name__ == "__main__":
    main()
