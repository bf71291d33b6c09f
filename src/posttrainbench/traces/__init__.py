"""Agent traces: one event schema for every CLI, a parser per CLI, and the per-run summary."""
