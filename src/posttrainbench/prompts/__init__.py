"""The agent prompt, rendered from `agent.txt` with the run's model, benchmark, budget and GPUs."""

from __future__ import annotations

from importlib.resources import files

from posttrainbench.specs import ModelCard, TaskInfo


def format_budget(seconds: float) -> str:
    minutes = round(seconds / 60)
    hours, mins = divmod(minutes, 60)
    parts = ([f"{hours} hour{'s' * (hours != 1)}"] if hours else []) + (
        [f"{mins} minute{'s' * (mins != 1)}"] if mins or not hours else []
    )
    return " and ".join(parts)


def gpu_info(gpus: int) -> str:
    if gpus == 0:
        return "There is no GPU: everything runs on the CPU."
    if gpus == 1:
        return "The machine has one GPU for you."
    return f"The machine has {gpus} GPUs for you."


def render(model: ModelCard, task: TaskInfo, benchmark: str, budget_seconds: float, gpus: int) -> str:
    template = files("posttrainbench.prompts").joinpath("agent.txt").read_text()
    allowed = f"   Allowed: {task.allowed_training_data}.\n" if task.allowed_training_data else ""
    values = {
        "model": model.hub_id,
        "benchmark": benchmark,
        "budget": format_budget(budget_seconds),
        "gpu_info": gpu_info(gpus),
        "allowed_data_rule": allowed,
    }
    for key, value in values.items():
        template = template.replace("{" + key + "}", value)
    return template
