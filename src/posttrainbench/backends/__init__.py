"""Where an experiment's runs execute: this machine's GPU slots, Slurm or HTCondor."""

from __future__ import annotations

from posttrainbench.backends.base import Backend, Job
from posttrainbench.experiments.spec import HTCondorBackend, LocalBackend, SlurmBackend


def get(options: LocalBackend | SlurmBackend | HTCondorBackend) -> Backend:
    if isinstance(options, SlurmBackend):
        from posttrainbench.backends.slurm import Slurm

        return Slurm(options)
    if isinstance(options, HTCondorBackend):
        from posttrainbench.backends.htcondor import HTCondor

        return HTCondor(options)
    from posttrainbench.backends.local import Local

    return Local(options)


__all__ = ["Backend", "Job", "get"]
