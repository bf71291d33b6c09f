"""`claude-code`: Anthropic's Claude Code.

    claude -p --output-format stream-json --verbose --dangerously-skip-permissions
           --model MODEL [--effort LEVEL] PROMPT
    claude -p ... --resume SESSION_ID MESSAGE          (continuation; --continue without an id)

As the original: print mode, every tool call approved, the stream-json transcript on stdout, a
10-hour limit on one shell command (BASH_MAX_TIMEOUT_MS). Non-essential traffic (telemetry, update
checks) is off; IS_SANDBOX lets it skip permissions when the harness runs as root (the sandbox is
ours). `retries=` sets CLAUDE_CODE_MAX_RETRIES. Auth: ANTHROPIC_API_KEY, or a subscription by CLAUDE_CODE_OAUTH_TOKEN or
~/.claude/.credentials.json. `base_url=` sets ANTHROPIC_BASE_URL (gateways, compatible providers).
The prompt gains the line the original adds for Claude: in print mode the session ends with the last
message, so background processes must be finished before it.
"""

from __future__ import annotations

from posttrainbench.agents.base import AgentContext
from posttrainbench.agents.cli.base import CliAgent, CliSettings, Subscription

NON_INTERACTIVE = (
    "You are running in a non-interactive mode. So make sure every process you are running finishes "
    "before you write your last message."
)


class ClaudeCode(CliAgent):
    name = "claude-code"
    package = "@anthropic-ai/claude-code"
    version = "2.1.197"
    binary = "claude"
    api_key_env = ("ANTHROPIC_API_KEY",)
    base_url_env = "ANTHROPIC_BASE_URL"
    subscription = Subscription(file=".claude/.credentials.json", env="CLAUDE_CODE_OAUTH_TOKEN")
    hosts = ("api.anthropic.com", "console.anthropic.com", "claude.ai")
    description = "Claude Code (--agent-config MODEL[,effort=...][,base_url=...][,auth=subscription])"

    def cli_environment(self, ctx: AgentContext, cfg: CliSettings) -> dict[str, str]:
        env = {
            "BASH_MAX_TIMEOUT_MS": "36000000",
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            "DISABLE_AUTOUPDATER": "1",
            "IS_SANDBOX": "1",
        }
        if cfg.retries is not None:
            env["CLAUDE_CODE_MAX_RETRIES"] = str(cfg.retries)
        return env

    def _flags(self, ctx: AgentContext) -> list[str]:
        cfg = self.settings(ctx)
        flags = ["--output-format", "stream-json", "--verbose", "--dangerously-skip-permissions"]
        flags += ["--model", cfg.model]
        if cfg.effort:
            flags += ["--effort", cfg.effort]
        return flags

    def command(self, ctx: AgentContext) -> list[str]:
        return [str(self.executable), "-p", *self._flags(ctx), f"{ctx.prompt}\n\n{NON_INTERACTIVE}"]

    def resume_command(self, ctx: AgentContext, session_id: str | None, message: str) -> list[str]:
        resume = ["--resume", session_id] if session_id else ["--continue"]
        return [str(self.executable), "-p", *self._flags(ctx), *resume, message]
