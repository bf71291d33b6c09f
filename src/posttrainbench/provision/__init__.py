"""Provisioning: environment images, the model and data cache, configuration, doctor."""
