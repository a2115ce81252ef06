"""Algorithm-agnostic building blocks: spec, networks, replay buffer, environment, run logging.

Names are imported lazily (PEP 562), so that `blocAndTools.gym_playground`, `experiment_spec`
and `replay_buffer` load without TensorFlow: MuJoCo's EGL rendering crashes in a process that
has TensorFlow loaded (see SoftActorCritic/record_video.py).
"""
import importlib

_SUBMODULE_OF = {
    "EnvironmentFault": "errors",
    "ExperimentSpec": "experiment_spec",
    "GymPlayground": "gym_playground",
    "Minibatch": "replay_buffer",
    "ReplayBuffer": "replay_buffer",
    "UserInputError": "errors",
    "build_mlp": "nn_blocs",
    "polyak_update": "nn_blocs",
}

__all__ = sorted(_SUBMODULE_OF)


def __getattr__(name: str):
    if name not in _SUBMODULE_OF:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_SUBMODULE_OF[name]}"), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
