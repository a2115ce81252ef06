"""`python -m SoftActorCritic`: the experiment runner."""
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # hide TensorFlow's CUDA-not-found banner on CPU machines

from SoftActorCritic.experiment_runner import main  # noqa: E402

sys.exit(main())
