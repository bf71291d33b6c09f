"""Experiments: a matrix of runs read from a TOML file, submitted to a backend, tracked and resumed
through their run directories."""
