"""SoftActorCriticAgent: the paper's Algorithm 1 organised in epochs, with evaluation, logs and checkpoints.

Each environment step: act (uniform random until min_pool_size, then a ~ pi(.|s), its noise white or
colored along the episode: action_noise_beta), env.step, store the transition; every gradient_step_interval
steps (once the pool holds min_pool_size transitions): sample gradient_steps minibatches at once and take as
many gradient steps in one call. After each epoch: max_eval_trj episodes with the deterministic
policy tanh(mu) on a separate environment, one row of metrics, and a checkpoint every
checkpoint_interval epochs.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from blocAndTools.action_noise import ActionNoise
from blocAndTools.checkpointing import RunCheckpointer
from blocAndTools.errors import EnvironmentFault, TrainingDiverged, TrainingInterrupted
from blocAndTools.experiment_spec import ExperimentSpec
from blocAndTools.gym_playground import GymPlayground
from blocAndTools.replay_buffer import ReplayBuffer
from blocAndTools.run_logging import ConsoleView, ProgressFiles
from blocAndTools.seeding import episode_seeds, stream_seed
from blocAndTools.tf_threads import configure_tensorflow_threads
from SoftActorCritic.brain import ADDED_LATER, SoftActorCriticBrain
from SoftActorCritic.metrics import UPDATE_METRICS
from SoftActorCritic.numpy_policy import BEST_POLICY, Policy, checkpoint_policy_path


class SoftActorCriticAgent:
    """Owns the environments, the replay buffer and the brain of one run."""

    def __init__(self, spec: ExperimentSpec, run_dir: Path | None = None) -> None:
        self.spec, self.run_dir = spec, None if run_dir is None else Path(run_dir)
        self.tf_threads = configure_tensorflow_threads(spec.gradient_steps)  # before TensorFlow's first op
        if spec.deterministic_ops:
            tf.config.experimental.enable_op_determinism()  # process-wide; measured cost: within noise here
        self.playground = GymPlayground(spec.env_id, spec.env_kwargs, seed=spec.seed, max_trj_steps=spec.max_trj_steps)
        self.eval_playground = GymPlayground(spec.env_id, spec.env_kwargs, max_trj_steps=spec.max_trj_steps)
        self.brain = SoftActorCriticBrain(spec, self.playground.obs_dim, self.playground.act_dim)
        self.action_noise = ActionNoise(spec.action_noise_beta, self.playground.act_dim,
                                        self.playground.max_episode_steps, self.brain.action_rng)
        self.warmup_steps = spec.warmup_steps(self.playground.max_episode_steps)  # min_pool_size, 'auto' resolved
        self.buffer = ReplayBuffer(spec.pool_capacity, self.playground.obs_dim, self.playground.act_dim,
                                   seed=stream_seed(spec.seed, "replay_sampler"))
        self.epoch = 0
        self.env_steps = 0
        self.best_eval_return = -np.inf
        self.elapsed_s = 0.0  # wall time of earlier sessions of this run (resume)
        self._obs: np.ndarray | None = None
        self._episode_return = 0.0
        self.stop_requested = False  # set by a signal handler: stop and checkpoint at the next step
        self.checkpointer = None if self.run_dir is None else RunCheckpointer(
            self.run_dir / "checkpoints", self.brain.trackables(), added_later=ADDED_LATER)

    # --------------------------------------------------------------- episodes
    def _act(self) -> np.ndarray:
        if self.env_steps < self.warmup_steps:
            return self.playground.sample_random_action()
        return self.brain.numpy_actor().with_noise(self._obs, self.action_noise.sample())

    def run_epoch(self, advance=lambda n=1: None) -> dict[str, Any]:
        """Environment steps (with their gradient steps) up to the end of the current epoch.

        Resumable: after a mid-epoch checkpoint it continues from the saved step. Returns
        the training metrics of the steps it ran (means over the epoch's gradient steps).
        """
        spec = self.spec
        episode_returns, update_metrics = [], []
        epoch_end = (self.epoch + 1) * spec.timestep_per_epoch
        while self.env_steps < epoch_end:
            if self.stop_requested:
                raise TrainingInterrupted(f"stopped at env step {self.env_steps}")
            if self._obs is None:
                self._obs, self._episode_return = self.playground.reset(), 0.0
                self.action_noise.reset()
            action = self._act()
            next_obs, reward, terminated, truncated = self.playground.step(action)
            self.buffer.add(self._obs, action, reward, next_obs, terminated)
            self.env_steps += 1
            self._episode_return += reward
            self._obs = next_obs
            if terminated or truncated:
                episode_returns.append(self._episode_return)
                self._obs = None
            if len(self.buffer) >= self.warmup_steps and self.env_steps % spec.gradient_step_interval == 0:
                # gradient_steps steps on as many minibatches from one gather, in one compiled call
                update = self.brain.train_steps(self.buffer.sample(
                    spec.batch_size_in_ts, num_batches=spec.gradient_steps, n_step=spec.n_step,
                    discount_factor=spec.discount_factor))
                if not update["all_finite"]:
                    self._stop_diverged(update)
                update_metrics.append(update)
            advance(1)
        metrics = {"train_return_mean": float(np.mean(episode_returns)) if episode_returns else None,
                   "train_episodes": len(episode_returns)}
        if update_metrics:  # metrics stay tensors during the epoch: one read-back per epoch, not per step
            metrics.update({key: float(tf.reduce_mean(tf.stack([update[key] for update in update_metrics])))
                            for key in UPDATE_METRICS if key in update_metrics[0]})
        return metrics

    def _stop_diverged(self, update: dict[str, tf.Tensor]) -> None:
        """The divergence guard: name the non-finite losses and stop before any checkpoint holds them."""
        bad = ", ".join(f"{key} became {float(update[key])}" for key in UPDATE_METRICS
                        if key in update and not np.isfinite(float(update[key])))
        raise TrainingDiverged(f"{bad} during epoch {self.epoch + 1} (update "
                               f"{int(self.brain.updates.numpy())}); the run stopped and its last good "
                               f"checkpoint is kept")

    def evaluate(self, n_episodes: int) -> list[float]:
        """Returns of n_episodes with the deterministic policy tanh(mu), from the same start states every epoch."""
        return [self.eval_playground.run_episode(self.brain.numpy_actor(), seed)
                for seed in episode_seeds(self.spec.seed, n_episodes)]

    # ------------------------------------------------------------------ train
    def train(self, view: ConsoleView, files: ProgressFiles | None = None) -> list[dict[str, Any]]:
        """Run the remaining epochs; returns their rows (also written to progress.csv when files is given)."""
        spec, rows = self.spec, []
        while self.epoch < spec.max_epoch:
            start, steps_before = time.perf_counter(), self.env_steps
            try:
                steps_left = (self.epoch + 1) * spec.timestep_per_epoch - self.env_steps  # fewer after a resume
                with view.epoch_progress(self.epoch + 1, steps_left) as advance:
                    metrics = self.run_epoch(advance)
                epoch_time = time.perf_counter() - start
                self.check_finite()  # never evaluate, keep or checkpoint a non-finite policy
                eval_returns = self.evaluate(spec.max_eval_trj)
            except (TrainingInterrupted, EnvironmentFault):
                if self.checkpointer:  # the state is consistent up to the last completed step
                    self.save_checkpoint()
                raise
            self.epoch += 1
            self.elapsed_s += time.perf_counter() - start
            row = {"epoch": self.epoch, "env_steps": self.env_steps,
                   "updates": int(self.brain.updates.numpy()), "wall_time_s": round(self.elapsed_s, 3),
                   "eval_return_mean": float(np.mean(eval_returns)) if eval_returns else None,
                   "eval_return_std": float(np.std(eval_returns)) if eval_returns else None,
                   "steps_per_s": round((self.env_steps - steps_before) / epoch_time, 1), **metrics}
            rows.append(row)
            view.print_epoch(row)
            if files is not None:
                files.write(row)
            self._save_best_policy(row["eval_return_mean"], view)
            if self.checkpointer and (self.epoch % spec.checkpoint_interval == 0 or self.epoch == spec.max_epoch):
                self.save_checkpoint(row["eval_return_mean"])
        return rows

    def _save_best_policy(self, eval_return: float | None, view: ConsoleView) -> None:
        """Keep the policy with the best eval return so far in best_policy/; say when it reaches the goal."""
        if self.run_dir is None or eval_return is None or eval_return <= self.best_eval_return:
            return
        self.best_eval_return = eval_return
        self.policy(eval_return).save(self.run_dir / BEST_POLICY)
        goal = self.spec.expected_reward_goal
        if goal is not None and eval_return >= goal:
            view.print(f"eval return {eval_return:.1f} reached the goal {goal:g}: policy saved to {BEST_POLICY}")

    def policy(self, eval_return: float | None = None) -> Policy:
        """phi as a policy file's content: the NumPy actor, the environment's action bounds and where it stands.

        Raises TrainingDiverged rather than give a policy with a non-finite weight (never written to disk).
        """
        space = self.playground.original_action_space
        policy = Policy(self.brain.numpy_actor(), space.low, space.high, self.spec.env_id, self.spec.env_kwargs,
                        self.env_steps, eval_return)
        if not policy.all_finite():
            raise TrainingDiverged(f"phi's weights became non-finite by env step {self.env_steps}; the run stopped "
                                   f"and its last good checkpoint is kept")
        return policy

    # ------------------------------------------------------------- checkpoints
    def checkpoint_state(self) -> dict[str, Any]:
        """The counters and random generator states a checkpoint needs besides the TF objects and the buffer (its
        run_state-N.json)."""
        return {"epoch": self.epoch, "env_steps": self.env_steps, "elapsed_s": self.elapsed_s,
                "best_eval_return": self.best_eval_return if np.isfinite(self.best_eval_return) else None,
                "playground": self.playground.get_rng_state(),
                "action_rng": self.brain.action_rng.bit_generator.state}

    def check_finite(self) -> None:
        """Raise TrainingDiverged, naming them, if any variable a checkpoint holds became NaN or infinite.

        The per-step guard sees the losses; a finite loss can still have an infinite gradient
        that turns weights or Adam moments non-finite after the step: this check catches them.
        """
        bad = self.brain.non_finite_variables()
        if bad:
            kept = "" if self.checkpointer is None or self.checkpointer.latest_number is None else \
                f" (at env step {self.checkpointer.latest_number})"
            raise TrainingDiverged(f"{', '.join(bad[:3])}{' and others' if len(bad) > 3 else ''} became non-finite "
                                   f"by env step {self.env_steps}; the run stopped and its last good checkpoint"
                                   f"{kept} is kept")

    def save_checkpoint(self, eval_return: float | None = None) -> None:
        """Checkpoint numbered by env steps, with its policy file (and the policy's eval return when this
        epoch's end was evaluated); a resumed run starts a fresh episode from here."""
        self.check_finite()
        self.policy(eval_return).save(checkpoint_policy_path(self.run_dir, self.env_steps))
        self.checkpointer.save(self.env_steps, self.buffer, self.checkpoint_state())

    def restore_checkpoint(self) -> None:
        """Continue from the newest complete checkpoint of run_dir."""
        self.buffer, state = self.checkpointer.restore_latest()
        self.epoch, self.env_steps, self.elapsed_s = state["epoch"], state["env_steps"], state["elapsed_s"]
        self.best_eval_return = -np.inf if state["best_eval_return"] is None else state["best_eval_return"]
        self.playground.set_rng_state(state["playground"])
        self.brain.action_rng.bit_generator.state = state["action_rng"]
        self.brain.actor_weights_changed()
        self._obs = None

    def close(self) -> None:
        self.playground.close()
        self.eval_playground.close()

