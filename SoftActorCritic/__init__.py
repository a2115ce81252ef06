"""Soft Actor-Critic (Haarnoja et al. 2018) in TensorFlow 2 / Keras: `python -m SoftActorCritic --help`.

`SoftActorCriticBrain` is imported on first use (PEP 562), so that the TensorFlow-free
modules (`numpy_policy`, `record_video`) load without TensorFlow.
"""

__all__ = ["SoftActorCriticBrain"]


def __getattr__(name: str):
    if name == "SoftActorCriticBrain":
        from SoftActorCritic.brain import SoftActorCriticBrain
        return SoftActorCriticBrain
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
