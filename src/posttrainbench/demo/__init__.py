"""The offline demo: a tiny locally built base model and the end-to-end demo command."""
