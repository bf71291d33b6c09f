"""Redaction: secrets never reach a saved log, trace or record.

Two nets: the values of the secrets the harness knows (environment variables whose names say
they are credentials, the variables named in PTB_REDACT_ENV, and per-run tokens), and common key
shapes (OpenAI and Anthropic `sk-...`, Hugging Face `hf_...`, GitHub, AWS, Google and Slack
tokens, bearer tokens), which catch keys the harness never saw.
"""

from __future__ import annotations

import os
import re
import zipfile
from collections.abc import Iterable
from pathlib import Path

SECRET_NAME = re.compile(r"(API_?KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIALS?|ACCESS_KEY|_PAT)$", re.I)
MIN_LENGTH = 8  # shorter values ("1", "true") would redact ordinary text
KEY_SHAPES = re.compile(
    r"\bsk-[A-Za-z0-9_-]{20,}"
    r"|\bhf_[A-Za-z0-9]{30,}"
    r"|\bgh[pousr]_[A-Za-z0-9]{36,}"
    r"|\bgithub_pat_[A-Za-z0-9_]{22,}"
    r"|\bAKIA[0-9A-Z]{16}\b"
    r"|\bAIza[0-9A-Za-z_-]{35}"
    r"|\bxox[abprs]-[A-Za-z0-9-]{10,}"
)
BEARER = re.compile(r"(\bBearer\s+)[A-Za-z0-9._~+/=-]{16,}", re.I)
TEXT_SUFFIXES = {
    ".log",
    ".txt",
    ".json",
    ".jsonl",
    ".md",
    ".py",
    ".sh",
    ".yaml",
    ".yml",
    ".toml",
    ".cfg",
    ".ini",
    ".env",
    ".csv",
    ".html",
}
ARCHIVE_SUFFIXES = {".eval"}  # inspect's logs: zip archives of JSON
MAX_FILE_BYTES = 64 * 1024 * 1024


class Redactor:
    def __init__(self, secrets: dict[str, str]):
        """`secrets`: name -> value; a value is replaced by [REDACTED:name]."""
        known = {v: k for k, v in secrets.items() if v and len(v) >= MIN_LENGTH}
        self.known = dict(sorted(known.items(), key=lambda kv: -len(kv[0])))  # longest first
        self.pattern = re.compile("|".join(re.escape(v) for v in self.known)) if self.known else None

    @classmethod
    def from_environment(
        cls, environ: dict[str, str] | None = None, extra: dict[str, str] | None = None
    ) -> Redactor:
        env = os.environ if environ is None else environ
        named = {n.strip() for n in env.get("PTB_REDACT_ENV", "").split(",") if n.strip()}
        secrets = {k: v for k, v in env.items() if SECRET_NAME.search(k) or k in named}
        return cls({**secrets, **(extra or {})})

    def extended(self, secrets: dict[str, str]) -> Redactor:
        """This redactor plus more named secrets (a session's per-run tokens, say)."""
        return Redactor({**{name: value for value, name in self.known.items()}, **secrets})

    def __call__(self, text: str) -> str:
        if self.pattern is not None:
            text = self.pattern.sub(lambda m: f"[REDACTED:{self.known[m.group(0)]}]", text)
        text = KEY_SHAPES.sub("[REDACTED]", text)
        return BEARER.sub(r"\1[REDACTED]", text)

    def file(self, path: Path) -> bool:
        """Redact one text file in place; True when it changed."""
        try:
            raw = path.read_bytes()
            text = raw.decode("utf-8")
        except (OSError, UnicodeDecodeError):
            return False
        clean = self(text)
        if clean == text:
            return False
        tmp = path.with_name(f".{path.name}.redact")
        tmp.write_text(clean, encoding="utf-8")
        tmp.chmod(path.stat().st_mode & 0o777)
        tmp.replace(path)
        return True

    def archive(self, path: Path) -> bool:
        """Redact the text members of a zip archive (an inspect .eval log); True when it changed.
        The archive is rewritten only when a member changed, with each member's compression kept."""
        try:
            with zipfile.ZipFile(path) as z:
                members = [(info, z.read(info)) for info in z.infolist()]
        except (OSError, zipfile.BadZipFile):
            return False
        changed = False
        cleaned = []
        for info, data in members:
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                cleaned.append((info, data))
                continue
            clean = self(text)
            changed |= clean != text
            cleaned.append((info, clean.encode("utf-8")))
        if not changed:
            return False
        tmp = path.with_name(f".{path.name}.redact")
        with zipfile.ZipFile(tmp, "w") as z:
            for info, data in cleaned:
                z.writestr(info, data)
        tmp.chmod(path.stat().st_mode & 0o777)
        tmp.replace(path)
        return True

    def tree(self, root: Path, skip: Iterable[Path] = ()) -> list[Path]:
        """Redact every text file and inspect log under root (by suffix, up to 64 MiB), except
        under `skip`."""
        skipped = [p.resolve() for p in skip]
        changed = []
        for path in sorted(root.rglob("*")) if root.is_dir() else []:
            suffix = path.suffix.lower()
            if suffix not in TEXT_SUFFIXES | ARCHIVE_SUFFIXES or path.is_symlink() or not path.is_file():
                continue
            if any(path.resolve().is_relative_to(s) for s in skipped) or path.stat().st_size > MAX_FILE_BYTES:
                continue
            if self.archive(path) if suffix in ARCHIVE_SUFFIXES else self.file(path):
                changed.append(path)
        return changed
