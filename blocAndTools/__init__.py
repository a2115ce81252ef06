"""Algorithm-agnostic building blocks: spec, networks, replay buffer, environment, run logging."""
from blocAndTools.errors import UserInputError
from blocAndTools.experiment_spec import ExperimentSpec
from blocAndTools.gym_playground import EnvironmentFault, GymPlayground
from blocAndTools.nn_blocs import build_mlp, polyak_update
from blocAndTools.replay_buffer import Minibatch, ReplayBuffer

__all__ = ["EnvironmentFault", "ExperimentSpec", "GymPlayground", "Minibatch", "ReplayBuffer",
           "UserInputError", "build_mlp", "polyak_update"]
