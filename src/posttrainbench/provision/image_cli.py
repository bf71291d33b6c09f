"""`ptb image`: render and build the agent and evaluation images."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Annotated

import typer

from posttrainbench.provision import images

image_app = typer.Typer(
    help=(
        "The agent image (Python stack, vLLM, the four CLI agents, common tools) and the evaluation image "
        "(the same Python stack, no agent CLIs), rendered from one pinned specification as Apptainer "
        "definition files and Dockerfiles (Docker/Podman)."
    ),
    no_args_is_help=True,
)
OUT_HELP = "directory for agent.def, eval.def, agent.Dockerfile, eval.Dockerfile and pins.json"


def _user_errors(fn):
    """posttrainbench.cli's `user_errors`, looked up at call time: that module imports this one."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from posttrainbench.cli import user_errors

        return user_errors(fn)(*args, **kwargs)

    return wrapper


@image_app.command("render")
@_user_errors
def render(out: Annotated[Path, typer.Option(help=OUT_HELP)] = Path("ptb-images")) -> None:
    """Write the Apptainer definition files and Dockerfiles of both images, and pins.json: the pins from
    pyproject.toml, the image-only pins (CUDA base, Python, vLLM, peft, Node.js) and the CLI agents'
    npm packages. Each file carries the spec's sha256 as PTB_IMAGE_SPEC, which run.json records."""
    for path in images.render_all(out):
        typer.echo(f"wrote {path}")


@image_app.command("build")
@_user_errors
def build(
    kind: Annotated[
        images.Kind | None, typer.Argument(help="agent or eval (default: both)", show_default=False)
    ] = None,
    engine: Annotated[
        images.Engine, typer.Option(help="apptainer (a .sif in --out) or docker (Docker or Podman)")
    ] = "apptainer",
    out: Annotated[Path, typer.Option(help=OUT_HELP + ", and the .sif files")] = Path("ptb-images"),
) -> None:
    """Render, then build with `apptainer build` or `docker build`. Inside a Docker container, pass the
    image's digest as PTB_IMAGE_DIGEST to have run.json record it; an Apptainer image's sha256 is
    computed on first use and cached."""
    for k in [kind] if kind else ["agent", "eval"]:
        typer.echo(f"built {images.build(k, engine, out)}")
