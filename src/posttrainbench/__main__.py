"""`python -m posttrainbench` is the same as `ptb`."""

from posttrainbench.cli import main

main()
