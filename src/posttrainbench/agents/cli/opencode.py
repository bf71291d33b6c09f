"""`opencode`: OpenCode, with any provider/model it knows (`--agent-config PROVIDER/MODEL`).

    opencode run -m PROVIDER/MODEL --format json --thinking PROMPT
    opencode run ... --session SESSION_ID MESSAGE          (continuation; --continue without an id)

As the original: run mode, every permission allowed, JSON events on stdout. The configuration
(OPENCODE_CONFIG, inside the agent's HOME) allows all tools and turns off auto-update and sharing;
LSP downloads are off; `--thinking` prints the reasoning.
`base_url=` adds an OpenAI-compatible provider `ptb` at that URL (then `-m ptb/MODEL`), keyed by
OPENAI_API_KEY. Auth: the provider's usual key (ANTHROPIC_API_KEY, OPENAI_API_KEY, OPENROUTER_API_KEY,
OPENCODE_API_KEY, ...), or a login in ~/.local/share/opencode/auth.json.
"""

from __future__ import annotations

import json

from posttrainbench.agents.base import AgentContext
from posttrainbench.agents.cli.base import CliAgent, CliSettings, Subscription


class OpenCode(CliAgent):
    name = "opencode"
    package = "opencode-ai"
    version = "1.18.33"
    binary = "opencode"
    api_key_env = ("OPENCODE_API_KEY", "ANTHROPIC_API_KEY", "OPENAI_API_KEY", "OPENROUTER_API_KEY")
    subscription = Subscription(file=".local/share/opencode/auth.json")
    hosts = ("opencode.ai", "api.anthropic.com", "api.openai.com", "openrouter.ai", "models.dev")
    description = "OpenCode (--agent-config PROVIDER/MODEL[,base_url=...][,auth=subscription])"

    def cli_environment(self, ctx: AgentContext, cfg: CliSettings) -> dict[str, str]:
        env = {"OPENCODE_CONFIG": str(self._config_file(ctx)), "OPENCODE_DISABLE_AUTOUPDATE": "1",
               "OPENCODE_DISABLE_LSP_DOWNLOAD": "1"}  # fmt: skip
        if cfg.base_url:  # only the configured provider: no fetch of the public model catalogue
            env["OPENCODE_DISABLE_MODELS_FETCH"] = "1"
        return env

    def _config_file(self, ctx: AgentContext):
        return ctx.home / ".config" / "opencode" / "opencode.json"

    def prepare(self, ctx: AgentContext) -> None:
        cfg = self.settings(ctx)
        config: dict = {"$schema": "https://opencode.ai/config.json", "permission": "allow",
                        "autoupdate": False, "share": "disabled"}  # fmt: skip
        if cfg.base_url:
            key = self._api_key()
            config["provider"] = {
                "ptb": {
                    "npm": "@ai-sdk/openai-compatible",
                    "options": {
                        "baseURL": cfg.base_url,
                        "apiKey": "{env:%s}" % (key[0] if key else "OPENAI_API_KEY"),
                    },
                    "models": {cfg.model.split("/", 1)[-1]: {}},
                }
            }
        path = self._config_file(ctx)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(config, indent=2) + "\n")

    def _model(self, ctx: AgentContext) -> str:
        cfg = self.settings(ctx)
        return f"ptb/{cfg.model.split('/', 1)[-1]}" if cfg.base_url else cfg.model

    def _run(self, ctx: AgentContext) -> list[str]:
        return [str(self.executable), "run", "-m", self._model(ctx), "--format", "json", "--thinking"]

    def command(self, ctx: AgentContext) -> list[str]:
        return [*self._run(ctx), ctx.prompt]

    def resume_command(self, ctx: AgentContext, session_id: str | None, message: str) -> list[str]:
        return [*self._run(ctx), *(["--session", session_id] if session_id else ["--continue"]), message]
