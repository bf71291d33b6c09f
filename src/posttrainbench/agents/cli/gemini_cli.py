"""`gemini-cli`: Google's Gemini CLI.

    gemini --yolo -m MODEL --output-format stream-json -p PROMPT
    gemini --yolo -m MODEL --output-format stream-json --resume SESSION_ID -p MESSAGE   (continuation)

As the original: every tool call approved, no sandbox of its own (GEMINI_SANDBOX=false), the
stream-json transcript on stdout. The workspace is trusted (GEMINI_CLI_TRUST_WORKSPACE) and the auth
type is preset in ~/.gemini/settings.json. Auth: GEMINI_API_KEY, or a Google login in
~/.gemini/oauth_creds.json. `base_url=` sets GOOGLE_GEMINI_BASE_URL; `retries=` sets maxAttempts; usage
statistics are off.
"""

from __future__ import annotations

import json

from posttrainbench.agents.base import AgentContext
from posttrainbench.agents.cli.base import CliAgent, CliSettings, Subscription


class GeminiCli(CliAgent):
    name = "gemini-cli"
    package = "@google/gemini-cli"
    version = "0.61.0"
    binary = "gemini"
    api_key_env = ("GEMINI_API_KEY",)
    base_url_env = "GOOGLE_GEMINI_BASE_URL"
    subscription = Subscription(file=".gemini/oauth_creds.json")
    hosts = ("generativelanguage.googleapis.com", "cloudcode-pa.googleapis.com", "oauth2.googleapis.com")
    description = "Google Gemini CLI (--agent-config MODEL[,base_url=...][,auth=subscription])"

    def cli_environment(self, ctx: AgentContext, cfg: CliSettings) -> dict[str, str]:
        return {"GEMINI_SANDBOX": "false", "GEMINI_CLI_TRUST_WORKSPACE": "true"}

    def prepare(self, ctx: AgentContext) -> None:
        cfg = self.settings(ctx)
        selected = "oauth-personal" if cfg.auth == "subscription" else "gemini-api-key"
        config: dict = {
            "security": {"auth": {"selectedType": selected}},
            "privacy": {"usageStatisticsEnabled": False},
        }
        if cfg.retries is not None:
            config["general"] = {"maxAttempts": cfg.retries + 1}
        home = ctx.home / ".gemini"
        home.mkdir(parents=True, exist_ok=True)
        (home / "settings.json").write_text(json.dumps(config, indent=2) + "\n")

    def _flags(self, ctx: AgentContext) -> list[str]:
        return ["--yolo", "-m", self.settings(ctx).model, "--output-format", "stream-json"]

    def command(self, ctx: AgentContext) -> list[str]:
        return [str(self.executable), *self._flags(ctx), "-p", ctx.prompt]

    def resume_command(self, ctx: AgentContext, session_id: str | None, message: str) -> list[str]:
        return [str(self.executable), *self._flags(ctx), "--resume", session_id or "latest", "-p", message]
