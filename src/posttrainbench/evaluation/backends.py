"""Inference backends: how the evaluated model is served to inspect-ai.

- `hf`: transformers in this process (batched; bf16 on a GPU, fp32 on CPU).
- `vllm`: a vLLM OpenAI-compatible server, started for the model (vLLM may live in its own venv:
  `PTB_VLLM_PYTHON`), or an existing one (`url`).
- `openai`: any OpenAI-compatible server at `url` (its own chat template applies: recorded as such).

Every backend gets the family's chat template (except a foreign `openai` server) and greedy decoding.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from inspect_ai.model import Model, get_model

from posttrainbench.errors import UserError

BackendName = Literal["auto", "hf", "vllm", "openai"]
BACKENDS = ("auto", "hf", "vllm", "openai")


@dataclass
class Served:
    model: Model
    backend: str
    template: str  # the template file applied, or a note saying whose template applies
    extra_body: dict | None = None  # sent with every request (an existing vLLM server's template)


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def vllm_available() -> bool:
    python = os.environ.get("PTB_VLLM_PYTHON")
    if python:
        probe = subprocess.run([python, "-c", "import vllm"], capture_output=True, timeout=120)
        return probe.returncode == 0
    return importlib.util.find_spec("vllm") is not None


def choose(backend: BackendName) -> str:
    """`auto`: vllm when it is importable and a GPU is present, else hf."""
    if backend != "auto":
        return backend
    return "vllm" if cuda_available() and vllm_available() else "hf"


@contextmanager
def serve(
    backend: BackendName,
    model_path: Path,
    template: Path,
    *,
    batch_size: int,
    gpu_memory_utilization: float,
    url: str | None,
    log_dir: Path,
) -> Iterator[Served]:
    name = choose(backend)
    if name == "hf":
        yield Served(_hf(model_path, template, batch_size), "hf", template.name)
    elif name == "vllm" and url is None:
        from posttrainbench.evaluation.vllm_server import VLLMServer

        with VLLMServer(
            model_path,
            chat_template=template,
            tool_parser="hermes",
            gpu_memory_utilization=gpu_memory_utilization,
            log_file=log_dir / "vllm_server.log",
        ) as server:
            model = get_model(f"vllm/{server.served_name}", base_url=server.base_url, api_key=server.api_key)
            yield Served(model, "vllm", template.name)
    elif name == "vllm":
        # An existing vLLM server: its template is overridden per request (vLLM accepts `chat_template`).
        model = get_model(
            f"vllm/{_served_name(url)}", base_url=url, api_key=os.environ.get("VLLM_API_KEY", "none")
        )
        yield Served(model, "vllm", template.name, extra_body={"chat_template": template.read_text()})
    elif name == "openai":
        if url is None:
            raise UserError("--backend openai needs --backend-url (an OpenAI-compatible /v1 URL)")
        model = get_model(
            f"openai-api/ptb/{_served_name(url)}",
            base_url=url,
            api_key=os.environ.get("OPENAI_API_KEY", "none"),
        )
        yield Served(model, "openai", "the server's own chat template")
    else:
        raise UserError(f"unknown backend '{backend}'; valid: {', '.join(BACKENDS)}")


def _hf(model_path: Path, template: Path, batch_size: int) -> Model:
    import torch

    cuda = cuda_available()
    # Greedy: do_sample=False, so sampling settings in a submission's generation_config.json do not apply.
    return get_model(
        "hf/local",
        model_path=str(model_path),
        chat_template=template.read_text(),
        do_sample=False,
        device="cuda:0" if cuda else "cpu",
        dtype=torch.bfloat16 if cuda else torch.float32,
        batch_size=batch_size,
    )


def _served_name(url: str) -> str:
    """The first model an OpenAI-compatible server lists."""
    import json
    import urllib.request

    try:
        with urllib.request.urlopen(url.rstrip("/") + "/models", timeout=30) as r:
            listing = json.load(r)
        return listing["data"][0]["id"]
    except Exception as e:
        raise UserError(f"could not list the models served at {url}: {e}") from None
