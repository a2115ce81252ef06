"""Ship a trained policy as a TensorFlow SavedModel that needs nothing of this project to run.

    serving_default(obs: float32 [None, obs_dim]) -> {"action": float32 [None, act_dim]}

The action is the deterministic tanh(mu(obs)) already rescaled to the environment's bounds,
so a consumer (TF Serving, another Python program, a converter) feeds raw observations
and gets actions to apply. The graph is phi's forward pass built from the policy file.
The folder also holds `policy.tflite`, the same signature converted for TensorFlow Lite /
LiteRT (small devices).
"""
from __future__ import annotations

from pathlib import Path

import tensorflow as tf

from blocAndTools.atomic_files import write_folder_atomically
from blocAndTools.nn_blocs import activation_from_name
from SoftActorCritic.numpy_policy import Policy


class ServedPolicy(tf.Module):
    """phi's deterministic action in the environment's bounds, as a tf.Module with one signature."""

    def __init__(self, policy: Policy) -> None:
        super().__init__(name="sac_policy")
        actor = policy.actor
        self.trunk = [(tf.Variable(kernel, trainable=False), tf.Variable(bias, trainable=False))
                      for kernel, bias in actor.trunk]
        self.mu = tuple(tf.Variable(array, trainable=False) for array in actor.mu)
        self.low, self.high = tf.constant(policy.action_low), tf.constant(policy.action_high)
        self.activation = activation_from_name(actor.activation_name)
        self.serve = tf.function(self._serve, input_signature=[
            tf.TensorSpec([None, actor.obs_dim], tf.float32, name="obs")])

    def _serve(self, obs: tf.Tensor) -> dict[str, tf.Tensor]:
        features = obs
        for kernel, bias in self.trunk:
            features = self.activation(features @ kernel + bias)
        unit_action = tf.tanh(features @ self.mu[0] + self.mu[1])  # in [-1, 1]
        return {"action": self.low + (unit_action + 1.0) * 0.5 * (self.high - self.low)}


TFLITE_FILE = "policy.tflite"


def export_saved_model(policy: Policy, out: Path) -> None:
    """Write the SavedModel and its TFLite twin to `out` (a new folder), built beside it then renamed."""
    module = ServedPolicy(policy)

    def write(folder: Path) -> None:
        tf.saved_model.save(module, str(folder), signatures={"serving_default": module.serve})
        (folder / TFLITE_FILE).write_bytes(tf.lite.TFLiteConverter.from_saved_model(str(folder)).convert())

    write_folder_atomically(out, write)
