"""The coding-agent CLIs: Claude Code, Codex, Gemini CLI and OpenCode."""
