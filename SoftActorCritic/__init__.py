"""Soft Actor-Critic (Haarnoja et al. 2018) in TensorFlow 2 / Keras: `python -m SoftActorCritic --help`.

`SoftActorCriticBrain` is imported lazily (PEP 562), so that the TensorFlow-free modules
(`numpy_policy`, `record_video`) load without TensorFlow.
"""
import importlib

_SUBMODULE_OF = {"SoftActorCriticBrain": "brain"}

__all__ = ["SoftActorCriticBrain"]


def __getattr__(name: str):
    if name not in _SUBMODULE_OF:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_SUBMODULE_OF[name]}"), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
