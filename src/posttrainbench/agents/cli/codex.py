"""`codex`: OpenAI's Codex CLI.

    codex exec --json --skip-git-repo-check --dangerously-bypass-approvals-and-sandbox -m MODEL PROMPT
    codex exec --json ... resume SESSION_ID MESSAGE      (continuation; --last without an id)

As the original: exec mode, no approvals and no Codex sandbox of its own (ours contains it), the
JSONL event stream on stdout, detailed reasoning summaries. Web search is on by default in exec mode
(the original's `--search` changes nothing in this version); `search=off` disables it. Settings go into
$CODEX_HOME/config.toml (inside the agent's HOME): `effort=` becomes model_reasoning_effort;
`base_url=` defines a Responses-API provider at that URL (Codex ignores OPENAI_BASE_URL), where
`retries=` applies; update checks, analytics and plugins are off (they would reach github.com and
chatgpt.com). Auth:
OPENAI_API_KEY or CODEX_API_KEY, or a ChatGPT subscription login in ~/.codex/auth.json.
"""

from __future__ import annotations

import json

from posttrainbench.agents.base import AgentContext
from posttrainbench.agents.cli.base import CliAgent, CliSettings, Subscription


class Codex(CliAgent):
    name = "codex"
    package = "@openai/codex"
    version = "0.171.0"
    binary = "codex"
    api_key_env = ("OPENAI_API_KEY", "CODEX_API_KEY")
    subscription = Subscription(file=".codex/auth.json")
    hosts = ("api.openai.com", "chatgpt.com", "auth.openai.com")
    description = "OpenAI Codex CLI (--agent-config MODEL[,effort=...][,base_url=...][,auth=subscription])"

    def cli_environment(self, ctx: AgentContext, cfg: CliSettings) -> dict[str, str]:
        return {"CODEX_HOME": str(ctx.home / ".codex")}

    def prepare(self, ctx: AgentContext) -> None:
        cfg = self.settings(ctx)
        lines = [f"model = {json.dumps(cfg.model)}", 'model_reasoning_summary = "detailed"',
                 "check_for_update_on_startup = false"]  # fmt: skip
        if cfg.effort:
            lines.append(f"model_reasoning_effort = {json.dumps(cfg.effort)}")
        if cfg.auth == "subscription":
            lines.append('forced_login_method = "chatgpt"')
        if cfg.base_url:
            key = self._api_key()
            lines += [
                'model_provider = "ptb"',
                "",
                "[model_providers.ptb]",
                'name = "ptb"',
                f"base_url = {json.dumps(cfg.base_url)}",
                f"env_key = {json.dumps(key[0] if key else self.api_key_env[0])}",
                'wire_api = "responses"',
                *([f"request_max_retries = {cfg.retries}", f"stream_max_retries = {cfg.retries}"]
                  if cfg.retries is not None else []),
            ]  # fmt: skip
        if not cfg.search:
            lines.insert(0, 'web_search = "disabled"')
        lines += ["", "[analytics]", "enabled = false", "", "[features]", "plugins = false"]
        home = ctx.home / ".codex"
        home.mkdir(parents=True, exist_ok=True)
        (home / "config.toml").write_text("\n".join(lines) + "\n")

    def _exec(self, ctx: AgentContext) -> list[str]:
        return [str(self.executable), "exec", "--json", "--skip-git-repo-check",
                "--dangerously-bypass-approvals-and-sandbox", "-m", self.settings(ctx).model]  # fmt: skip

    def command(self, ctx: AgentContext) -> list[str]:
        return [*self._exec(ctx), ctx.prompt]

    def resume_command(self, ctx: AgentContext, session_id: str | None, message: str) -> list[str]:
        return [*self._exec(ctx), "resume", *([session_id] if session_id else ["--last"]), message]
