"""Clean a generated answer before a judge sees it, as the original PostTrainBench judged tasks do.

Two steps, in order: drop a leading `<think>…</think>` block, then cut runaway repetition down to
`max_reps` copies. Degenerate loops (a line, a block of lines, or a substring repeated until the token
budget runs out) would otherwise cost judge tokens and bury the answer. The repetition rules follow the
original `limit_repetitions` exactly; this is an independent implementation of the same behaviour.
"""

from __future__ import annotations

import itertools
import re

MAX_REPS = 5
MAX_PASSES = 10
MAX_BLOCK_LINES = 29
# Unit-length bands for repeated substrings, scanned shortest first.
SUBSTRING_UNITS = ((3, 30), (30, 60), (60, 120), (120, 250), (250, 500))


def clean_answer(text: str) -> str:
    """The answer a judge is shown: reasoning prefix removed, repetition limited."""
    text = text.strip()
    if text.startswith("<think>") and "</think>" in text:
        text = text.split("</think>", 1)[1].strip()
    return limit_repetitions(text)


def limit_repetitions(text: str, max_reps: int = MAX_REPS) -> str:
    """Keep at most `max_reps` consecutive copies of any repeated line, block of lines or substring.

    Each pass applies the three rules in turn; passes repeat until nothing changes (at most 10).
    """
    for _ in range(MAX_PASSES):
        text, lines_cut = _cap_identical_lines(text, max_reps)
        text, block_cut = _cap_first_repeated_block(text, max_reps)
        text, substring_cut = _cap_repeated_substrings(text, max_reps)
        if not (lines_cut or block_cut or substring_cut):
            break
    return text


def _cap_identical_lines(text: str, max_reps: int) -> tuple[str, bool]:
    out: list[str] = []
    changed = False
    for line, run in itertools.groupby(text.split("\n")):
        count = sum(1 for _ in run)
        if count > max_reps:
            count, changed = max_reps, True
        out.extend([line] * count)
    return "\n".join(out), changed


def _cap_first_repeated_block(text: str, max_reps: int) -> tuple[str, bool]:
    """Cut the first run of more than `max_reps` copies of a block of 2..29 lines (smallest block
    size first, then earliest start). Only one run is cut per call; later passes find the rest."""
    lines = text.split("\n")
    for size in range(2, min(MAX_BLOCK_LINES + 1, len(lines) // 5 + 1)):
        for start in range(len(lines) - size + 1):
            block = lines[start : start + size]
            end = start + size
            while lines[end : end + size] == block:
                end += size
            if (end - start) // size > max_reps:
                rest = lines[end:]
                # A run cut off mid-block (the generation hit its budget) leaves a partial copy: drop it too.
                kept = [] if _is_partial_copy(rest, block) else rest
                return "\n".join(lines[:start] + block * max_reps + kept), True
    return text, False


def _is_partial_copy(rest: list[str], block: list[str]) -> bool:
    if len(rest) > len(block):
        return False
    return all(_line_matches(line, block_line) for line, block_line in zip(rest, block, strict=False))


def _line_matches(line: str, block_line: str) -> bool:
    """Equal, or one is a prefix of the other once the shorter is stripped (a truncated line)."""
    if line == block_line:
        return True
    if line.strip() and block_line.startswith(line.strip()):
        return True
    return bool(block_line.strip()) and line.startswith(block_line.strip())


def _cap_repeated_substrings(text: str, max_reps: int) -> tuple[str, bool]:
    changed_any = False
    while True:
        changed = False
        for shortest, longest in SUBSTRING_UNITS:
            # A unit followed by at least `max_reps` more copies, i.e. more than `max_reps` in all.
            pattern = re.compile(rf"(.{{{shortest},{longest}}}?)\1{{{max_reps},}}", re.DOTALL)
            text, n = pattern.subn(lambda m: m.group(1) * max_reps, text)
            changed = changed or n > 0
        if not changed:
            return text, changed_any
        changed_any = True
