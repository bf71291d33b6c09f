"""`reference`: supervised fine-tuning (TRL) on the task's allowed training data, sized to the
time budget and to the hardware it finds. The calibration point for what a plain recipe reaches."""

import sys

from posttrainbench import tasks
from posttrainbench.agents.builtin.contract import AgentInputs
from posttrainbench.agents.builtin.sft import finetune


def main() -> None:
    inputs = AgentInputs.from_env()
    examples = tasks.get(inputs.task).training_examples(inputs.workspace)
    if not examples:
        sys.exit(
            f"reference: task {inputs.task} ships no training data (its Task.training_examples is empty); "
            "the reference recipe needs some"
        )
    print(f"reference: {len(examples)} training examples, {inputs.seconds_left():.0f}s left", flush=True)
    summary = finetune(inputs.model, examples, inputs.workspace / "final_model", inputs.deadline)
    print(f"reference: done {summary}", flush=True)


if __name__ == "__main__":
    main()
