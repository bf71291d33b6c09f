"""The configuration: precedence of the environment, ./.env, the project's and the user's ptb.toml and the
defaults, each value's source in `ptb config show`, secrets never printed, unknown keys refused, and the
paths taking effect (settings, `ptb index`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import ptb
from posttrainbench import settings
from posttrainbench.agents.cli.base import CliAgent, agents_dir
from posttrainbench.provision import config

SECRETS = {
    "OPENAI_API_KEY": "sk-user-" + "u" * 40,
    "ANTHROPIC_API_KEY": "sk-ant-project-" + "p" * 40,
    "HF_TOKEN": "hf_" + "d" * 34,
    "GEMINI_API_KEY": "AIza" + "e" * 35,
}


@pytest.fixture
def place(tmp_path, monkeypatch) -> Path:
    """An empty configuration: no variable set, the user's ptb.toml under tmp_path/xdg, the working
    directory tmp_path/project/sub (the project's ptb.toml may go in tmp_path/project)."""
    for name in (*config.PATH_ENV.values(), *config.CREDENTIALS):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    (tmp_path / "xdg" / "posttrainbench").mkdir(parents=True)
    work = tmp_path / "project" / "sub"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    return tmp_path


def write(path: Path, text: str) -> None:
    path.write_text(text)


def show_json() -> dict[str, dict]:
    proc = ptb("config", "show", "--json", check=True)
    return {s["key"]: s for s in json.loads(proc.stdout)["settings"]}


def test_each_layer_overrides_the_ones_below_and_is_named_as_the_source(place, monkeypatch):
    user, project, work = place / "xdg" / "posttrainbench", place / "project", place / "project" / "sub"
    write(user / "ptb.toml", f"""
[paths]
images = "/u/images"
twin_cache = "/u/twins"
agents_dir = "/u/agents"
model_cache = "/u/hub"
[credentials]
OPENAI_API_KEY = "{SECRETS["OPENAI_API_KEY"]}"
ANTHROPIC_API_KEY = "sk-ant-user-{"x" * 40}"
""")  # fmt: skip
    write(project / "ptb.toml", f"""
[paths]
twin_cache = "twins"
agents_dir = "/p/agents"
model_cache = "/p/hub"
[credentials]
ANTHROPIC_API_KEY = "{SECRETS["ANTHROPIC_API_KEY"]}"
HF_TOKEN = "hf_project{"y" * 30}"
""")  # fmt: skip
    write(work / ".env", f"""# a comment
export PTB_AGENTS_DIR=agents
PTB_MODEL_CACHE='/e/hub'
HF_TOKEN="{SECRETS["HF_TOKEN"]}"
GEMINI_API_KEY=from-dotenv-{"z" * 30}
UNRELATED=1
""")  # fmt: skip
    monkeypatch.setenv("PTB_MODEL_CACHE", "/env/hub")
    monkeypatch.setenv("GEMINI_API_KEY", SECRETS["GEMINI_API_KEY"])

    got = show_json()
    expected = {
        "paths.images": ("/u/images", "user ptb.toml", user / "ptb.toml"),
        "paths.twin_cache": (str(project / "twins"), "project ptb.toml", project / "ptb.toml"),
        "paths.agents_dir": (str(work / "agents"), ".env", work / ".env"),
        "paths.model_cache": ("/env/hub", "environment", None),
        "paths.results": ("ptb-results", "default", None),
        "paths.ptb_home": (str(Path.home() / ".cache" / "posttrainbench"), "default", None),
    }
    for key, (value, source, file) in expected.items():
        entry = got[key]
        assert (entry["value"], entry["source"], entry["file"]) == (value, source, file and str(file)), key
    sources = {
        "OPENAI_API_KEY": "user ptb.toml",
        "ANTHROPIC_API_KEY": "project ptb.toml",
        "HF_TOKEN": ".env",
        "GEMINI_API_KEY": "environment",
    }
    for name, source in sources.items():
        entry = got[f"credentials.{name}"]
        assert entry["source"] == source
        assert entry["value"] == config.mask(SECRETS[name])  # the winning layer's value
    assert got["credentials.CODEX_API_KEY"] == {
        "key": "credentials.CODEX_API_KEY", "variable": "CODEX_API_KEY", "value": None, "source": None, "file": None
    }  # fmt: skip


def test_secrets_are_masked_in_the_table_and_the_json(place, monkeypatch):
    write(place / "project" / "sub" / ".env", f"OPENAI_API_KEY={SECRETS['OPENAI_API_KEY']}\n")
    user = place / "xdg" / "posttrainbench" / "ptb.toml"
    write(user, f'[credentials]\nHF_TOKEN = "{SECRETS["HF_TOKEN"]}"\n')
    monkeypatch.setenv("GEMINI_API_KEY", SECRETS["GEMINI_API_KEY"])
    monkeypatch.setenv("CLAUDE_CODE_OAUTH_TOKEN", "an-oauth-token-without-a-known-shape")
    table, as_json = ptb("config", "show", check=True), ptb("config", "show", "--json", check=True)
    for proc in (table, as_json):
        out = proc.stdout + proc.stderr
        for secret in [*SECRETS.values(), "an-oauth-token-without-a-known-shape"]:
            assert secret not in out
            assert secret[8:30] not in out
    assert f"sk-...({len(SECRETS['OPENAI_API_KEY'])} chars)" in table.stdout
    assert "hf_...(37 chars)" in table.stdout and "AIza...(39 chars)" in table.stdout
    assert "...(36 chars)" in table.stdout  # no known shape: nothing of it shows


def test_mask_keeps_only_the_public_prefix():
    assert config.mask("sk-ant-api03-" + "a" * 40) == "sk-...(53 chars)"
    assert config.mask("ghp_" + "b" * 36) == "ghp_...(40 chars)"
    assert config.mask("sk-short") == "...(8 chars)"  # too short to be a key shape: no prefix either


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ('[paths]\nmodelcache = "/x"\n', "paths.modelcache"),
        ('[credentials]\nMY_KEY = "v"\n', "credentials.MY_KEY"),
        ('results = "/x"\n', "results"),
    ],
)
def test_an_unknown_key_is_an_error_naming_the_file_and_the_key(place, text, where):
    path = place / "project" / "ptb.toml"
    write(path, text)
    proc = ptb("config", "show")
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert f"{path}: {where}: unknown key" in proc.stderr and "Traceback" not in proc.stderr


def test_settings_follow_ptb_toml(place, monkeypatch):
    user = place / "xdg" / "posttrainbench" / "ptb.toml"
    write(user, '[paths]\nptb_home = "home"\n')
    home = user.parent / "home"
    assert settings.ptb_home() == home
    assert (settings.model_cache(), agents_dir()) == (home / "hub", home / "agents")
    write(place / "project" / "ptb.toml", '[paths]\nmodel_cache = "../cache"\n')
    assert settings.model_cache() == place / "project" / ".." / "cache"
    assert settings.twin_cache() == home / "twins"
    monkeypatch.setenv("PTB_MODEL_CACHE", "/elsewhere")
    assert settings.model_cache() == Path("/elsewhere")
    from posttrainbench.agents import registry

    agent = next(a for a in registry.AGENTS.values() if isinstance(a, CliAgent))
    assert agent.install_dir.parent == home / "agents"


def test_the_known_credentials_cover_every_cli_agent():
    from posttrainbench.agents import registry

    for agent in registry.AGENTS.values():
        if isinstance(agent, CliAgent):
            wanted = {*agent.api_key_env, *([agent.subscription.env] if agent.subscription.env else [])}
            assert wanted <= set(config.CREDENTIALS), agent.name


def test_the_results_default_follows_ptb_toml(place):
    results = place / "results"
    results.mkdir()
    write(place / "project" / "ptb.toml", f'[paths]\nresults = "{results}"\n')
    proc = ptb("index", check=True)
    assert (results / "index.sqlite").is_file(), proc.stdout
