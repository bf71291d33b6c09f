"""Environment images rendered from one pinned specification: the agent image (the Python stack, vLLM,
the four CLI agents, common tools) and the evaluation image (the same stack, no agent CLIs), as
Apptainer definition files and Dockerfiles; building them; and naming the image a run is in."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tomllib
from importlib import metadata
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, TypeAdapter, ValidationError

from posttrainbench import settings
from posttrainbench.errors import UserError
from posttrainbench.rundir import sha256_file, write_json_atomic

Kind = Literal["agent", "eval"]
Engine = Literal["apptainer", "docker"]

# Image-only pins; everything else comes from pyproject.toml and the agent classes.
CUDA = "12.8.1"
# devel, not runtime: Triton/FlashInfer JIT and agents building kernels need nvcc.
BASE_IMAGE = f"nvidia/cuda:{CUDA}-cudnn-devel-ubuntu24.04"
TORCH_INDEX = "https://download.pytorch.org/whl/cu" + "".join(CUDA.split(".")[:2])
PYTHON = "3.12"  # Ubuntu 24.04's own python3.12
# The one vLLM pin: it must be the release built against the torch pin in pyproject.toml (the image
# build fails rather than swap torch). It gets its own venv, as it pins an older transformers.
VLLM = "0.32.0"
IMAGE_PINS = {"peft": "0.21.2"}
NODE_MAJOR = 22  # the CLI agents need Node.js 20+; Ubuntu 24.04 ships 18
APT = [
    "build-essential", "ca-certificates", "curl", "wget", "git", "git-lfs", "tmux", "jq", "less", "vim-tiny",
    "unzip", "zip", "rsync", "procps", "htop", "openssh-client", "gnupg",
    f"python{PYTHON}", f"python{PYTHON}-venv", f"python{PYTHON}-dev",
]  # fmt: skip

ROOT = "/opt/ptb"
VENV = f"{ROOT}/venv"
VLLM_VENV = f"{ROOT}/vllm"
AGENTS_DIR = f"{ROOT}/agents"
INSTALL_HINTS = {
    "apptainer": "building with --engine apptainer needs Apptainer (or SingularityCE) on PATH: install it "
    "(https://apptainer.org/docs/admin/main/installation.html) or use --engine docker",
    "docker": "building with --engine docker needs Docker or Podman on PATH: install one "
    "(https://docs.docker.com/engine/install/ or https://podman.io/docs/installation) or use --engine apptainer",
}
ENGINES: dict[str, tuple[str, ...]] = {
    "apptainer": ("apptainer", "singularity"),
    "docker": ("docker", "podman"),
}
CHECKOUT_PYPROJECT = Path(__file__).resolve().parents[3] / "pyproject.toml"  # absent once installed


class AgentPin(BaseModel):
    name: str
    package: str
    version: str


class ImageSpec(BaseModel):
    """Everything the images pin; written as pins.json, whose sha256 names the spec."""

    base_image: str
    python: str
    torch_index: str
    python_pins: dict[str, str]  # pyproject.toml's [project] dependencies
    image_pins: dict[str, str]
    vllm: str
    node_major: int
    apt: list[str]
    agents: list[AgentPin]

    def pins_json(self) -> str:
        return self.model_dump_json(indent=2) + "\n"

    def digest(self) -> str:
        return hashlib.sha256(self.pins_json().encode()).hexdigest()

    def image_name(self, kind: Kind) -> str:
        return f"posttrainbench-{kind}:{self.digest()[:12]}"


def _requirements() -> list[str]:
    if CHECKOUT_PYPROJECT.is_file():
        project = tomllib.loads(CHECKOUT_PYPROJECT.read_text())["project"]
        # An editable install's metadata is frozen at install time; the checkout's file is current.
        if project["name"] == "posttrainbench":
            return project["dependencies"]
    return [r for r in metadata.requires("posttrainbench") or [] if ";" not in r]  # extras carry a marker


def python_pins() -> dict[str, str]:
    pins = {}
    for req in _requirements():
        name, sep, version = req.partition("==")
        if not sep:
            raise ValueError(f"dependency {req!r} is not pinned with ==; the images need exact versions")
        pins[name.strip()] = version.strip()
    return pins


def spec() -> ImageSpec:
    from posttrainbench.agents import registry
    from posttrainbench.agents.cli.base import CliAgent

    clis = [a for a in registry.AGENTS.values() if isinstance(a, CliAgent)]
    return ImageSpec(
        base_image=BASE_IMAGE,
        python=PYTHON,
        torch_index=TORCH_INDEX,
        python_pins=python_pins(),
        image_pins=IMAGE_PINS,
        vllm=VLLM,
        node_major=NODE_MAJOR,
        apt=APT,
        agents=[AgentPin(name=a.name, package=a.package, version=a.version) for a in clis],
    )


def _steps(s: ImageSpec, kind: Kind) -> list[list[str]]:
    """Shell steps, each a list of commands joined by &&."""
    torch = f"torch=={s.python_pins['torch']}"
    pip = "pip install --no-cache-dir"
    rest = [f"{n}=={v}" for n, v in {**s.python_pins, **s.image_pins}.items() if n != "torch"]
    apt_install = "DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends"
    steps = [
        ["apt-get update", f"{apt_install} {' '.join(s.apt)}", "rm -rf /var/lib/apt/lists/*"],
        [
            f"python{s.python} -m venv {VENV}",
            f"{VENV}/bin/{pip} --upgrade pip",
            f"{VENV}/bin/{pip} --index-url {s.torch_index} {torch}",
            f"{VENV}/bin/{pip} {' '.join(rest)}",
        ],
        [
            f"python{s.python} -m venv {VLLM_VENV}",
            f"{VLLM_VENV}/bin/{pip} --upgrade pip",
            f"{VLLM_VENV}/bin/{pip} --index-url {s.torch_index} {torch}",
            f"{VLLM_VENV}/bin/{pip} vllm=={s.vllm} {torch}",
        ],
    ]
    if kind == "agent":
        steps.append([
            f"curl -fsSL https://deb.nodesource.com/setup_{s.node_major}.x -o /tmp/nodesource.sh",
            "bash /tmp/nodesource.sh",
            f"{apt_install} nodejs",
            "rm -rf /var/lib/apt/lists/* /tmp/nodesource.sh",
        ])  # fmt: skip
        steps.append([
            f"npm install --prefix {AGENTS_DIR}/{a.name}-{a.version} --no-audit --no-fund --loglevel=error "
            f"{a.package}@{a.version}"
            for a in s.agents
        ])  # fmt: skip
    return steps


def _env(s: ImageSpec, kind: Kind) -> dict[str, str]:
    env = {"PATH": f"{VENV}/bin:$PATH", "PTB_VLLM_PYTHON": f"{VLLM_VENV}/bin/python"}
    if kind == "agent":
        env["PTB_AGENTS_DIR"] = AGENTS_DIR  # where CliAgent looks for <name>-<version>
    return env | _labels(s, kind)


def _labels(s: ImageSpec, kind: Kind) -> dict[str, str]:
    return {"PTB_IMAGE": s.image_name(kind), "PTB_IMAGE_SPEC": s.digest()}


def render(s: ImageSpec, kind: Kind, fmt: Engine) -> str:
    steps = _steps(s, kind)
    about = (
        f"posttrainbench {kind} image, rendered by `ptb image render` from pins.json (spec sha256 "
        f"{s.digest()}); change the spec, not this file."
    )
    if fmt == "apptainer":
        lines = [
            "Bootstrap: docker",
            f"From: {s.base_image}",
            "",
            "%help",
            f"    {about}",
            "",
            "%labels",
            *(f"    {k} {v}" for k, v in _labels(s, kind).items()),
            "",
            "%environment",
            *(f"    export {k}={v}" for k, v in _env(s, kind).items()),
            "",
            "%post",
            "    set -eu",
            *("    " + " && \\\n        ".join(step) for step in steps),
        ]
    else:
        lines = [
            f"# {about}",
            f"FROM {s.base_image}",
            *("RUN " + " && \\\n    ".join(step) for step in steps),
            "LABEL " + " ".join(f"{k}={json.dumps(v)}" for k, v in _labels(s, kind).items()),
            "ENV " + " ".join(f"{k}={v}" for k, v in _env(s, kind).items()),
        ]
    return "\n".join(lines) + "\n"


def render_all(out: Path) -> list[Path]:
    """Write agent.def, eval.def, agent.Dockerfile, eval.Dockerfile and pins.json into `out`."""
    s = spec()
    out.mkdir(parents=True, exist_ok=True)
    files = {"pins.json": s.pins_json()}
    for kind in ("agent", "eval"):
        files[f"{kind}.def"] = render(s, kind, "apptainer")
        files[f"{kind}.Dockerfile"] = render(s, kind, "docker")
    for name, text in files.items():
        (out / name).write_text(text)
    return [out / name for name in files]


def build(kind: Kind, engine: Engine, out: Path) -> str:
    """Render into `out` and build one image: returns the .sif path (apptainer) or the image tag (docker)."""
    exe = next((path for name in ENGINES[engine] if (path := shutil.which(name))), None)
    if exe is None:
        raise UserError(INSTALL_HINTS[engine])
    render_all(out)
    if engine == "apptainer":
        target = str(out / f"posttrainbench-{kind}.sif")
        cmd = [exe, "build", "--force", target, str(out / f"{kind}.def")]
    else:
        target = spec().image_name(kind)
        cmd = [exe, "build", "-f", str(out / f"{kind}.Dockerfile"), "-t", target, str(out)]
    if subprocess.run(cmd).returncode != 0:
        raise UserError(f"`{' '.join(cmd)}` failed (its output is above)")
    return target


class _Hashed(BaseModel):
    mtime_ns: int
    size: int
    sha256: str


_CACHE = TypeAdapter(dict[str, _Hashed])


def _cached_sha256(path: Path) -> str:
    """A .sif is gigabytes: hash it once per (path, mtime, size), remembered under PTB_HOME."""
    cache_file = settings.ptb_home() / "image-sha256.json"
    try:
        cache = _CACHE.validate_json(cache_file.read_bytes())
    except (OSError, ValidationError):
        cache = {}
    st = path.stat()
    key = str(path.resolve())
    hit = cache.get(key)
    if hit and (hit.mtime_ns, hit.size) == (st.st_mtime_ns, st.st_size):
        return hit.sha256
    cache[key] = _Hashed(mtime_ns=st.st_mtime_ns, size=st.st_size, sha256=sha256_file(path))
    try:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(cache_file, _CACHE.dump_python(cache))
    except OSError:
        pass  # a read-only PTB_HOME costs a re-hash next time, not the run
    return cache[key].sha256


def identity() -> dict[str, str]:
    """Which image this process runs in, for run.json: an Apptainer image (its path and sha256), a
    Docker/Podman image built from a rendered Dockerfile (PTB_IMAGE, and PTB_IMAGE_DIGEST when the
    user passes it), or none. `image_spec` is the spec hash the image was rendered from."""
    container = os.environ.get("APPTAINER_CONTAINER") or os.environ.get("SINGULARITY_CONTAINER")
    if container:
        out = {"image": "apptainer", "image_path": container}
        if Path(container).is_file():  # a sandbox directory has no single digest
            out["image_sha256"] = _cached_sha256(Path(container))
    elif os.environ.get("PTB_IMAGE"):
        out = {"image": "docker", "image_name": os.environ["PTB_IMAGE"]}
        if digest := os.environ.get("PTB_IMAGE_DIGEST"):
            out["image_digest"] = digest
    else:
        return {"image": "none"}
    if spec_hash := os.environ.get("PTB_IMAGE_SPEC"):
        out["image_spec"] = spec_hash
    return out
