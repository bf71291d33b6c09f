"""Environment images: the rendered Apptainer definition files and Dockerfiles carry every pin of the one
spec, `ptb image render|build` work (building fails clearly without an engine), and the image identity
recorded in run.json."""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from importlib import metadata
from pathlib import Path

import pytest

from conftest import ptb
from posttrainbench.agents import registry
from posttrainbench.agents.cli.base import CliAgent
from posttrainbench.provision import images

PYPROJECT = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
PINS = dict(req.split("==") for req in PYPROJECT["project"]["dependencies"])
CLIS = [a for a in registry.AGENTS.values() if isinstance(a, CliAgent)]
DOCKER_INSTRUCTIONS = {"FROM", "RUN", "ENV", "LABEL", "ARG", "WORKDIR", "COPY", "SHELL", "USER", "CMD"}


@pytest.fixture(scope="module")
def spec() -> images.ImageSpec:
    return images.spec()


@pytest.fixture(scope="module")
def rendered(spec) -> dict[tuple[str, str], str]:
    return {(k, f): images.render(spec, k, f) for k in ("agent", "eval") for f in ("apptainer", "docker")}


def test_spec_pins(spec):
    assert spec.python_pins == PINS
    assert spec.base_image.startswith("nvidia/cuda:") and "ubuntu24.04" in spec.base_image
    assert spec.python == "3.12"
    assert re.fullmatch(r"https://download\.pytorch\.org/whl/cu\d{3}", spec.torch_index)
    assert spec.vllm and spec.image_pins["peft"]
    assert spec.node_major >= 20
    assert {(a.name, a.package, a.version) for a in spec.agents} == {
        (a.name, a.package, a.version) for a in CLIS
    }
    assert len(spec.agents) == 4
    assert spec.digest() == hashlib.sha256(spec.pins_json().encode()).hexdigest()


def test_pins_from_installed_metadata(monkeypatch, tmp_path):
    monkeypatch.setattr(images, "CHECKOUT_PYPROJECT", tmp_path / "pyproject.toml")
    installed = [r for r in metadata.requires("posttrainbench") if ";" not in r]
    assert images.python_pins() == dict(req.split("==") for req in installed)


@pytest.mark.parametrize("fmt", ["apptainer", "docker"])
@pytest.mark.parametrize("kind", ["agent", "eval"])
def test_rendered_image_carries_every_pin(rendered, spec, kind, fmt):
    text = rendered[kind, fmt]
    assert spec.base_image in text
    assert "python3.12 -m venv" in text and "python3.12-venv" in text
    assert f"--index-url {spec.torch_index} torch=={PINS['torch']}" in text
    for name, version in PINS.items():
        assert re.search(rf"(?<![\w-]){re.escape(name)}=={re.escape(version)}(?!\S)", text), name
    assert f"vllm=={spec.vllm} torch=={PINS['torch']}" in text
    assert f"peft=={spec.image_pins['peft']}" in text
    for tool in ("git", "curl", "build-essential", "tmux", "jq"):
        assert f" {tool} " in text
    assert spec.digest() in text and "PTB_IMAGE_SPEC" in text
    for agent in CLIS:
        assert (f"{agent.package}@{agent.version}" in text) == (kind == "agent")
    assert ("nodesource.com/setup_22.x" in text) == (kind == "agent")
    assert ("PTB_AGENTS_DIR=/opt/ptb/agents" in text) == (kind == "agent")


@pytest.mark.parametrize("kind", ["agent", "eval"])
def test_apptainer_definition_structure(rendered, spec, kind):
    lines = rendered[kind, "apptainer"].splitlines()
    assert lines[:2] == ["Bootstrap: docker", f"From: {spec.base_image}"]
    sections = [line for line in lines if line.startswith("%")]
    assert sections == ["%help", "%labels", "%environment", "%post"]
    labels = lines[lines.index("%labels") + 1 : lines.index("%environment") - 1]
    assert f"    PTB_IMAGE_SPEC {spec.digest()}" in labels
    assert f"    PTB_IMAGE {spec.image_name(kind)}" in labels
    env = lines[lines.index("%environment") + 1 : lines.index("%post") - 1]
    assert f"    export PTB_IMAGE_SPEC={spec.digest()}" in env
    assert "    export PATH=/opt/ptb/venv/bin:$PATH" in env
    assert all(line.startswith("    ") for line in lines[lines.index("%post") + 1 :])


@pytest.mark.parametrize("kind", ["agent", "eval"])
def test_dockerfile_parses_into_instructions(rendered, spec, kind):
    logical, pending = [], ""
    for line in rendered[kind, "docker"].splitlines():
        if not pending and (not line.strip() or line.startswith("#")):
            continue
        pending += line.removesuffix("\\")
        if not line.endswith("\\"):
            logical.append(pending)
            pending = ""
    assert not pending
    instructions = [line.split(" ", 1)[0] for line in logical]
    assert set(instructions) <= DOCKER_INSTRUCTIONS
    assert instructions[0] == "FROM" and logical[0] == f"FROM {spec.base_image}"
    label = next(line for line in logical if line.startswith("LABEL "))
    assert f'PTB_IMAGE_SPEC="{spec.digest()}"' in label
    env = next(line for line in logical if line.startswith("ENV ")).split()[1:]
    assert f"PTB_IMAGE_SPEC={spec.digest()}" in env and f"PTB_IMAGE={spec.image_name(kind)}" in env


def test_render_command_writes_files(tmp_path, spec):
    proc = ptb("image", "render", "--out", str(tmp_path / "img"), check=True)
    names = {"agent.def", "eval.def", "agent.Dockerfile", "eval.Dockerfile", "pins.json"}
    assert {p.name for p in (tmp_path / "img").iterdir()} == names
    assert all(name in proc.stdout for name in names)
    assert json.loads((tmp_path / "img" / "pins.json").read_text()) == spec.model_dump()
    assert (tmp_path / "img" / "eval.def").read_text() == images.render(spec, "eval", "apptainer")


@pytest.mark.parametrize(("engine", "install"), [("apptainer", "Apptainer"), ("docker", "Docker or Podman")])
def test_build_without_engine_says_what_to_install(tmp_path, monkeypatch, engine, install):
    monkeypatch.setenv("PATH", str(tmp_path))  # no apptainer, singularity, docker or podman
    proc = ptb("image", "build", "agent", "--engine", engine, "--out", str(tmp_path / "img"))
    assert proc.returncode == 2, proc.stderr
    assert "error:" in proc.stderr and install in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "img").exists()


def test_identity_outside_a_container(monkeypatch):
    for var in ("APPTAINER_CONTAINER", "SINGULARITY_CONTAINER", "PTB_IMAGE", "PTB_IMAGE_SPEC"):
        monkeypatch.delenv(var, raising=False)
    assert images.identity() == {"image": "none"}


def test_identity_in_docker(monkeypatch):
    monkeypatch.delenv("APPTAINER_CONTAINER", raising=False)
    monkeypatch.delenv("SINGULARITY_CONTAINER", raising=False)
    monkeypatch.setenv("PTB_IMAGE", "posttrainbench-eval:abc")
    monkeypatch.setenv("PTB_IMAGE_SPEC", "abc123")
    monkeypatch.setenv("PTB_IMAGE_DIGEST", "sha256:feed")
    assert images.identity() == {
        "image": "docker", "image_name": "posttrainbench-eval:abc", "image_spec": "abc123",
        "image_digest": "sha256:feed",
    }  # fmt: skip


def test_identity_in_apptainer_hashes_once(tmp_path, monkeypatch):
    sif = tmp_path / "ptb.sif"
    sif.write_bytes(b"not really an image")
    monkeypatch.setenv("PTB_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("APPTAINER_CONTAINER", str(sif))
    monkeypatch.setenv("PTB_IMAGE_SPEC", "abc123")
    digest = hashlib.sha256(sif.read_bytes()).hexdigest()
    assert images.identity() == {
        "image": "apptainer", "image_path": str(sif), "image_sha256": digest, "image_spec": "abc123",
    }  # fmt: skip
    cache = tmp_path / "home" / "image-sha256.json"
    assert json.loads(cache.read_text())[str(sif.resolve())]["sha256"] == digest

    def no_rehash(path):
        raise AssertionError(f"{path} hashed again")

    monkeypatch.setattr(images, "sha256_file", no_rehash)
    assert images.identity()["image_sha256"] == digest  # same path, mtime and size: from the cache

    monkeypatch.undo()
    monkeypatch.setenv("PTB_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("APPTAINER_CONTAINER", str(sif))
    sif.write_bytes(b"a rebuilt image")
    assert images.identity()["image_sha256"] == hashlib.sha256(b"a rebuilt image").hexdigest()
