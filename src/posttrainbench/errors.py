"""Errors a user can act on. The CLI prints them as one line and exits with code 2."""


class UserError(Exception):
    """Bad input from the user: unknown names, unusable paths, impossible budgets."""


def unknown(kind: str, name: str, valid: list[str]) -> UserError:
    plural = kind[:-1] + "ies" if kind.endswith("y") else kind + ("es" if kind.endswith(("x", "s")) else "s")
    return UserError(f"unknown {kind} '{name}'; valid {plural}: {', '.join(sorted(valid))}")
