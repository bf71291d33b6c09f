"""Evaluation of a model on a task: one implementation shared by the agent-facing `evaluate.py`
and the harness's final evaluation (`python -m posttrainbench.evaluation`)."""
