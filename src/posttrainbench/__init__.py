"""posttrainbench: measure whether AI coding agents can post-train language models."""

__version__ = "0.1.0"
