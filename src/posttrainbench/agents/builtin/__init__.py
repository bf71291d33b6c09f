"""Built-in agents that run as plain Python programs inside the sandbox (no LLM involved)."""
