"""Integrity checks. Each returns a CheckResult with a verdict (pass / flag / error) and the
evidence it is based on; a check that crashes is `error`, never a flag."""
