"""`plugin-copy`: an agent from another package. It submits the base model unchanged: loads
$PTB_MODEL from the cache the harness gives it and saves it to final_model/ (run as a module)."""

from __future__ import annotations

import os
import sys

from posttrainbench.agents.base import Agent, AgentContext
from posttrainbench.specs import AgentInfo


class CopyAgent(Agent):
    info = AgentInfo(
        name="plugin-copy", kind="python", description="saves the base model as final_model (a plugin agent)"
    )

    def command(self, ctx: AgentContext) -> list[str]:
        return [sys.executable, "-m", "ptb_plugin_example.copy_agent"]


def main() -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = os.environ["PTB_MODEL"]
    print(f"copying {model} for task {os.environ['PTB_TASK']}", flush=True)
    AutoTokenizer.from_pretrained(model).save_pretrained("final_model")
    AutoModelForCausalLM.from_pretrained(model).save_pretrained("final_model")


if __name__ == "__main__":
    main()
