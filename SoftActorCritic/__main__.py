"""`python -m SoftActorCritic`: the experiment runner, the same as the `sac` command."""
import sys

from SoftActorCritic.experiment_runner import main

sys.exit(main())
