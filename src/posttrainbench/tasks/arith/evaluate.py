#!/usr/bin/env python3
"""Evaluate a model on Arith, exactly as the final evaluation does (it shares this code).

Usage: python evaluate.py [--model-path final_model] [--limit 50] [--max-tokens 16]
                          [--json-output-file metrics.json] [--templates-dir templates]

Do not modify this file or templates/: the harness evaluates your final_model with its own copy,
on the full test set (--limit -1).
"""

import sys

from posttrainbench.evaluation.cli import main

if __name__ == "__main__":
    sys.exit(main(task="arith"))
