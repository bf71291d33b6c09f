"""A posttrainbench plugin for the tests: tasks and an agent from outside the package."""
