"""SoftActorCriticAgent: what a checkpoint may hold, and faults in every phase of an epoch."""
import tempfile
import unittest
from pathlib import Path
from unittest import mock

import gymnasium
import numpy as np
import pandas as pd
import tensorflow as tf

from blocAndTools.errors import TrainingDiverged
from blocAndTools.experiment_spec import ExperimentSpec
from blocAndTools.run_logging import ConsoleView
from SoftActorCritic.agent import SoftActorCriticAgent
from SoftActorCritic.brain import SoftActorCriticBrain
from SoftActorCritic.numpy_policy import load_policy
from tests.helpers import TINY_SPEC, run_cli, write_spec

EVALUATION_FAULTS_LEFT = [0]  # how many more evaluation resets raise, in this process


class FaultyEvaluationPendulum(gymnasium.Wrapper):
    """Pendulum whose second seeded reset raises: only evaluation resets more than once with a seed."""

    def __init__(self, **kwargs):
        super().__init__(gymnasium.make("Pendulum-v1", **kwargs))
        self.seeded_resets = 0

    def reset(self, *, seed=None, options=None):
        self.seeded_resets += seed is not None
        if self.seeded_resets == 2 and EVALUATION_FAULTS_LEFT[0] > 0:
            EVALUATION_FAULTS_LEFT[0] -= 1
            raise RuntimeError("renderer crashed")
        return self.env.reset(seed=seed, options=options)


gymnasium.register("FaultyEvaluationPendulum-v0", entry_point=FaultyEvaluationPendulum, max_episode_steps=100)


def infinite_gradient_at(step: int, loss: str):
    """A compute_losses whose `loss` keeps its value but whose gradient is infinite at gradient step `step`."""
    original = SoftActorCriticBrain.compute_losses

    def compute_losses(brain, *args):
        metrics = original(brain, *args)

        @tf.custom_gradient
        def same_value(x):
            return tf.identity(x), lambda dy: dy * tf.where(brain.gradient_step == step, np.inf, 1.0)
        metrics[loss] = same_value(metrics[loss])
        return metrics
    return compute_losses


class NonFiniteStateTest(unittest.TestCase):
    def test_a_finite_loss_with_an_infinite_gradient_stops_before_any_checkpoint_or_best_policy(self):
        spec = ExperimentSpec(**{**TINY_SPEC, "max_epoch": 1})  # 101 gradient steps: 0, ..., 100
        for loss, network in (("q1_loss", "Q_theta_1"), ("pi_loss", "phi")):
            with self.subTest(loss=loss), tempfile.TemporaryDirectory() as folder:
                with mock.patch.object(SoftActorCriticBrain, "compute_losses", infinite_gradient_at(100, loss)):
                    agent = SoftActorCriticAgent(spec, Path(folder))  # traces the update
                with self.assertRaises(TrainingDiverged) as caught:
                    agent.train(ConsoleView())
                agent.close()
                self.assertIn(network, str(caught.exception))
                self.assertIn("became non-finite by env step 200", str(caught.exception))
                self.assertEqual(list(Path(folder).iterdir()), [])  # no checkpoint, no policy file


class EvaluationFaultTest(unittest.TestCase):
    def test_a_fault_during_evaluation_is_checkpointed_and_resumes_to_an_uninterrupted_csv(self):
        with tempfile.TemporaryDirectory() as folder:
            spec = write_spec(Path(folder) / "spec.yaml", env_id="FaultyEvaluationPendulum-v0", max_eval_trj=2,
                              max_trj_steps=None)
            run_dir = Path(folder) / "run"
            EVALUATION_FAULTS_LEFT[0] = 1
            status, _, err = run_cli("train", "--spec", str(spec), "--run-dir", str(run_dir))
            self.assertEqual(status, 1, err)
            self.assertIn("raised in reset()", err)
            self.assertIn("checkpoint saved at env step 200", err)
            self.assertEqual(load_policy(run_dir).env_steps, 200)
            status, _, err = run_cli("train", "--resume", "--run-dir", str(run_dir))
            self.assertEqual(status, 0, err)
            resumed = pd.read_csv(run_dir / "progress.csv")
            whole = Path(folder) / "whole"
            self.assertEqual(run_cli("train", "--spec", str(spec), "--run-dir", str(whole))[0], 0)
            uninterrupted = pd.read_csv(whole / "progress.csv")
            self.assertEqual(resumed["epoch"].tolist(), [1, 2])
            columns = ["epoch", "env_steps", "gradient_steps", "eval_return_mean"]
            pd.testing.assert_frame_equal(resumed[columns], uninterrupted[columns])
            # the training metrics of the interrupted epoch cover the steps run after the resume: none here
            self.assertTrue(np.isnan(resumed["q1_loss"][0]))
            timing = ["wall_time_s", "steps_per_s"]
            pd.testing.assert_series_equal(resumed.drop(columns=timing).iloc[1], uninterrupted.drop(columns=timing).iloc[1])


if __name__ == "__main__":
    unittest.main()
