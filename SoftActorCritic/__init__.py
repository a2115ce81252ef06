"""Soft Actor-Critic (Haarnoja et al. 2018) in TensorFlow 2 / Keras: `sac --help`.

`load_policy` and `Policy` act without TensorFlow. `SoftActorCriticBrain` is imported on
first use (PEP 562), so that importing this package does not load TensorFlow.
"""
from SoftActorCritic.numpy_policy import Policy, load_policy

__all__ = ["Policy", "SoftActorCriticBrain", "load_policy"]


def __getattr__(name: str):
    if name == "SoftActorCriticBrain":
        from SoftActorCritic.brain import SoftActorCriticBrain
        return SoftActorCriticBrain
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
