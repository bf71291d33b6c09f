"""Test helpers for posttrainbench and its plugins: a scripted model API that speaks the providers'
wire formats (`agent_api`), so an agent can be tested end to end without a paid model."""
