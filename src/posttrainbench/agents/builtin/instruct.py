"""`instruct`: submits the family's official instruct model (the instruct baseline of the leaderboard;
the lineage check flags it, as it should, and the aggregation reads baselines unsubstituted).
The twin comes from the twin cache, which the harness mounts for this agent only, or from the model
cache (where locally built models keep theirs)."""

import os
from pathlib import Path

from transformers import AutoModelForCausalLM, AutoTokenizer

from posttrainbench import models
from posttrainbench.agents.builtin.contract import AgentInputs


def main() -> None:
    inputs = AgentInputs.from_env()
    card = next(c for c in models.MODELS.values() if c.hub_id == inputs.model)
    twin = card.instruct_twin
    if not twin:
        raise SystemExit(f"{card.name} has no instruct twin to submit")
    path = models.twin_snapshot(card, Path(os.environ["HF_HUB_CACHE"]))
    if path is None:
        raise SystemExit(f"the instruct model {twin} is in neither the twin cache nor the model cache")
    out = inputs.workspace / "final_model"
    AutoModelForCausalLM.from_pretrained(path).save_pretrained(out)
    AutoTokenizer.from_pretrained(path).save_pretrained(out)
    print(f"saved the instruct model {twin} unchanged to {out}")


if __name__ == "__main__":
    main()
