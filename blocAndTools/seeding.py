"""The random streams of a run, each derived from the spec's one seed by numpy.random.SeedSequence.

One seed per run; every stream gets its own spawned child, so no two streams draw the
same numbers (with one plain seed for all, Pendulum's first warm-up actions equalled its
initial state). Checkpoints save the generators' states, so a resumed run continues
each stream where it stopped.

stream            draws
env               the training environment's resets (seeded at the first reset, then continued)
action_space      the uniform random actions of the warm-up (min_pool_size)
action_noise      eps of the training actions a = tanh(mu + std * eps)
replay_sampler    the minibatch indices
update_noise      eps of the update's fresh actions a~ (tf.random.Generator)
networks          the initial weights (keras.utils.set_random_seed)
evaluation        the start states of the evaluation episodes: the same ones after every epoch
play              the start states of `eval` and `play` episodes, unseen by training and its evaluations
critic_dropout    the dropout masks of the critics (critic_dropout > 0; tf.random.Generator)
"""
from __future__ import annotations

import numpy as np

STREAMS = ("env", "action_space", "action_noise", "replay_sampler", "update_noise", "networks", "evaluation",
           "play", "critic_dropout")  # append only: a stream's numbers depend on its position


def _child(seed: int, stream: str) -> np.random.SeedSequence:
    return np.random.SeedSequence(seed).spawn(len(STREAMS))[STREAMS.index(stream)]


def stream_seed(seed: int, stream: str) -> int:
    """A 32-bit integer seed for one stream of the run seeded with `seed` (for APIs that take an int)."""
    return int(_child(seed, stream).generate_state(1)[0])


def episode_seeds(seed: int, n_episodes: int, stream: str = "evaluation") -> list[int]:
    """Reset seeds of n episodes: evaluation episode k starts from the same state after every epoch.

    Fixed start states make successive evaluations differ only by the policy, and let another
    library be evaluated on exactly the same episodes (benchmarks/learning_benchmark.py).
    """
    return [int(value) for value in _child(seed, stream).generate_state(n_episodes)] if n_episodes else []
