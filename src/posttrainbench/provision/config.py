"""The configuration: where things go (paths) and the provider credentials, each value with where it came
from. Highest first: a command's own flags (`ptb run --out`), environment variables, `./.env`, the
project's `ptb.toml` (this directory or the nearest parent that has one), the user's
`$XDG_CONFIG_HOME/posttrainbench/ptb.toml` (default `~/.config/posttrainbench/ptb.toml`), the defaults.

Every key has one environment variable (`PTB_HOME`, `OPENAI_API_KEY`, ...), which is also its name in
`.env`; a ptb.toml has the same keys in its [paths] and [credentials] tables. Relative paths in a file
are taken from that file's directory. docs/configuration.md lists the keys.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, SecretStr

from posttrainbench.errors import UserError
from posttrainbench.redact import KEY_SHAPES

FILE_NAME = "ptb.toml"
# [paths] key -> its environment variable
PATH_ENV = {
    "results": "PTB_RESULTS",
    "ptb_home": "PTB_HOME",
    "model_cache": "PTB_MODEL_CACHE",
    "twin_cache": "PTB_TWIN_CACHE",
    "images": "PTB_IMAGES",
    "agents_dir": "PTB_AGENTS_DIR",
}
# The keys the CLI agents (agents/cli/*.py: api_key_env, subscription.env), the judges (inspect's
# providers) and model downloads (the hub) read.
CREDENTIALS = (
    "ANTHROPIC_API_KEY",
    "OPENAI_API_KEY",
    "CODEX_API_KEY",
    "GEMINI_API_KEY",
    "GOOGLE_API_KEY",
    "OPENROUTER_API_KEY",
    "OPENCODE_API_KEY",
    "CLAUDE_CODE_OAUTH_TOKEN",
    "HF_TOKEN",
)
# The public prefixes of the key shapes redact.KEY_SHAPES recognises: all a masked key shows.
KEY_PREFIX = re.compile(r"sk-|hf_|gh[pousr]_|github_pat_|AKIA|AIza|xox[abprs]-")

Source = Literal["environment", ".env", "project ptb.toml", "user ptb.toml", "default"]


class Origin(BaseModel):
    source: Source
    file: Path | None = None

    def __str__(self) -> str:
        return f"{self.source} ({self.file})" if self.file else self.source


class Paths(BaseModel):
    results: Path  # where `ptb run`, `ptb index`, `ptb leaderboard` and `ptb report` look by default
    ptb_home: Path
    model_cache: Path
    twin_cache: Path
    images: Path
    agents_dir: Path


class Config(BaseModel):
    paths: Paths
    credentials: dict[str, SecretStr]  # those set somewhere, by environment variable
    origins: dict[str, Origin]  # "paths.results", "credentials.OPENAI_API_KEY" -> where it came from


Layer = tuple[Origin, dict[str, str]]  # values by environment variable

# Credentials export_credentials() put into os.environ: load() leaves them out of the environment
# layer, so their origin stays the file they came from.
_exported: set[str] = set()


def user_file() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "posttrainbench" / FILE_NAME


def project_file(cwd: Path) -> Path | None:
    return next((d / FILE_NAME for d in (cwd, *cwd.parents) if (d / FILE_NAME).is_file()), None)


def _toml(path: Path, source: Source) -> Layer:
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise UserError(f"{path}: not valid TOML: {e}") from None
    except OSError as e:
        raise UserError(f"{path}: cannot read it: {e.strerror}") from None
    values = {}
    for table, names in (("paths", PATH_ENV), ("credentials", {n: n for n in CREDENTIALS})):
        section = raw.pop(table, {})
        if not isinstance(section, dict):
            raise UserError(f"{path}: {table}: must be a table ([{table}])")
        for key, value in section.items():
            if key not in names:
                raise UserError(f"{path}: {table}.{key}: unknown key; known: {', '.join(names)}")
            if not isinstance(value, str):
                raise UserError(f"{path}: {table}.{key}: must be a string")
            values[names[key]] = str(path.parent / Path(value).expanduser()) if table == "paths" else value
    if raw:
        raise UserError(f"{path}: {next(iter(raw))}: unknown key; a ptb.toml has [paths] and [credentials]")
    return Origin(source=source, file=path), values


def _dotenv(path: Path) -> Layer:
    """Only the configuration's own variables; the rest of the file is not ours."""
    from dotenv import dotenv_values  # here: its import would cost every `ptb` start ~20 ms

    values = {}
    for name, value in dotenv_values(path, interpolate=False).items():
        if value and name in CREDENTIALS:
            values[name] = value
        elif value and name in PATH_ENV.values():
            values[name] = str(path.parent / Path(value).expanduser())
    return Origin(source=".env", file=path), values


def _environment() -> Layer:
    names = (*PATH_ENV.values(), *CREDENTIALS)
    values = {n: os.environ[n] for n in names if os.environ.get(n) and n not in _exported}
    return Origin(source="environment"), values


def load(cwd: Path | None = None) -> Config:
    """The effective configuration, as seen from `cwd` (default: the working directory)."""
    cwd = cwd or Path.cwd()
    layers = [_environment()]  # highest first
    if (cwd / ".env").is_file():
        layers.append(_dotenv(cwd / ".env"))
    if (project := project_file(cwd)) is not None:
        layers.append(_toml(project, "project ptb.toml"))
    if user_file().is_file():
        layers.append(_toml(user_file(), "user ptb.toml"))

    def pick(name: str) -> tuple[str, Origin] | None:
        return next(((values[name], origin) for origin, values in layers if name in values), None)

    origins: dict[str, Origin] = {}
    paths: dict[str, Path] = {}
    defaults = {
        "results": lambda: Path("ptb-results"),
        "ptb_home": lambda: Path.home() / ".cache" / "posttrainbench",
        "model_cache": lambda: paths["ptb_home"] / "hub",
        "twin_cache": lambda: paths["ptb_home"] / "twins",  # apart: the agents must not read the twins
        "images": lambda: paths["ptb_home"] / "images",
        "agents_dir": lambda: paths["ptb_home"] / "agents",
    }
    for key, default in defaults.items():  # in order: a default may follow a path before it
        found = pick(PATH_ENV[key])
        paths[key] = Path(found[0]) if found else default()
        origins[f"paths.{key}"] = found[1] if found else Origin(source="default")
    credentials = {}
    for name in CREDENTIALS:
        if found := pick(name):
            credentials[name] = SecretStr(found[0])
            origins[f"credentials.{name}"] = found[1]
    return Config(paths=Paths(**paths), credentials=credentials, origins=origins)


def export_credentials() -> None:
    """Put the credentials of .env and the ptb.toml files into os.environ where the variable is not set
    (the environment wins), for the agents and judges, which read only os.environ. `ptb` does this once,
    at start."""
    for name, secret in load().credentials.items():
        if not os.environ.get(name):
            os.environ[name] = secret.get_secret_value()
            _exported.add(name)


def mask(secret: str) -> str:
    """`sk-...(51 chars)`: a key of a shape redact knows keeps its public prefix; nothing else shows."""
    prefix = KEY_PREFIX.match(secret) if KEY_SHAPES.match(secret) else None
    return f"{prefix.group() if prefix else ''}...({len(secret)} chars)"
