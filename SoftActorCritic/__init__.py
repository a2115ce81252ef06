"""Soft Actor-Critic (Haarnoja et al. 2018) in TensorFlow 2 / Keras: `python -m SoftActorCritic --help`."""
from SoftActorCritic.brain import SoftActorCriticBrain

__all__ = ["SoftActorCriticBrain"]
