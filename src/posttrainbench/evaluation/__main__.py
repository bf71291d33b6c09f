"""`python -m posttrainbench.evaluation --task T ...`: the harness's final-evaluation entry point."""

import sys

from posttrainbench.evaluation.cli import main

sys.exit(main())
