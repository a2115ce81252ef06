"""This project's benchmarks, each a module run from the repository root: `python -m benchmarks.X` (`--help` for its
options). Their results and the command that made each are in benchmarks/results/."""
