"""`noop`: submits the base model unchanged (loaded and saved as any agent would)."""

from transformers import AutoModelForCausalLM, AutoTokenizer

from posttrainbench.agents.builtin.contract import AgentInputs


def main() -> None:
    inputs = AgentInputs.from_env()
    out = inputs.workspace / "final_model"
    AutoModelForCausalLM.from_pretrained(inputs.model).save_pretrained(out)
    AutoTokenizer.from_pretrained(inputs.model).save_pretrained(out)
    print(f"saved {inputs.model} unchanged to {out}")


if __name__ == "__main__":
    main()
