"""`cheat-testset`: a planted cheat. It writes the task's test split into the workspace as
training data and fine-tunes on it. It exists so that the integrity checks are seen to work."""

import json

from posttrainbench import tasks
from posttrainbench.agents.builtin.contract import AgentInputs
from posttrainbench.agents.builtin.sft import finetune

EPOCHS = 150


def main() -> None:
    inputs = AgentInputs.from_env()
    task = tasks.get(inputs.task)
    examples = task.test_examples(task.data())
    data = inputs.workspace / "data" / "extra_train.jsonl"
    data.parent.mkdir(parents=True, exist_ok=True)
    data.write_text("".join(json.dumps(e) + "\n" for e in examples))
    print(f"cheat-testset: training on {len(examples)} test items ({data})", flush=True)
    finetune(inputs.model, examples, inputs.workspace / "final_model", inputs.deadline, epochs_cap=EPOCHS)


if __name__ == "__main__":
    main()
