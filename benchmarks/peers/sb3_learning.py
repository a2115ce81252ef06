"""One Stable-Baselines3 SAC training run, evaluated the way this project evaluates its own runs.

Runs only inside the peer virtual environment (benchmarks/peers/.venv): this project never
imports torch or SB3, and this file imports nothing of the project. The learning benchmark
(benchmarks/learning_benchmark.py) calls it as a subprocess and reads its stdout, where it
prints one JSON line per evaluation and a last line {"done": true, ...}; everything the
libraries print goes to stderr.

    python sb3_learning.py --env Pendulum-v1 --seed 1 --steps 10000 --eval-interval 1000 \\
        --eval-seeds 11,22,33 --learning-starts 100

Hyperparameters: SB3 2.9's SAC defaults (MlpPolicy net_arch [256, 256], lr 3e-4, buffer 1e6,
batch 256, tau 0.005, gamma 0.99, train_freq 1, gradient_steps 1, ent_coef 'auto' with target
entropy -|A|), except learning_starts, which the caller sets per task (--learning-starts).
torch.set_num_threads(1): one core, like the project's training processes on this machine.

Evaluation, identical to the project's agent: every --eval-interval env steps (a callback at
num_timesteps = k * interval; SB3 calls it after the env step and before that step's gradient
step), one episode per seed of --eval-seeds on a separate environment, reset(seed=s), actions
model.predict(obs, deterministic=True) (tanh of the mean, rescaled to the bounds), until
terminated or truncated (the environment's own time limit); the line reports the mean and the
population std of the returns. Not resumable mid-run: SB3 saves models with pickle, which this
project does not use; an interrupted run is rerun from the start by the benchmark.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from importlib import metadata

import gymnasium as gym
import numpy as np

# One clean JSON stream on stdout: keep the real stdout for it, send fd 1 to stderr (the imports above print
# nothing; torch and SB3, imported in main, go to stderr).
_JSON_OUT = os.fdopen(os.dup(1), "w")
os.dup2(2, 1)


def emit(record: dict) -> None:
    """One JSON line on the real stdout, flushed at once (a run stopped midway keeps every line printed so far)."""
    _JSON_OUT.write(json.dumps(record) + "\n")
    _JSON_OUT.flush()


def evaluate(model, env: gym.Env, seeds: list[int]) -> list[float]:
    """Undiscounted returns of one deterministic episode per reset seed."""
    returns = []
    for seed in seeds:
        obs, _ = env.reset(seed=seed)
        done, total = False, 0.0
        while not done:
            action, _ = model.predict(obs, deterministic=True)
            obs, reward, terminated, truncated, _ = env.step(action)
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
    return returns


def parse_seeds(text: str) -> list[int]:
    """'1,2,3' -> [1, 2, 3]; an error names the bad item."""
    try:
        return [int(item) for item in text.split(",") if item.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--eval-seeds must be comma-separated integers, got {text!r}") from None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", required=True, help="gymnasium id, e.g. Pendulum-v1")
    parser.add_argument("--env-kwargs", default="{}", help='JSON object for gym.make, e.g. {"continuous": true}')
    parser.add_argument("--seed", type=int, required=True, help="SAC(seed=...): networks, buffer, env, actions")
    parser.add_argument("--steps", type=int, required=True, help="total_timesteps")
    parser.add_argument("--eval-interval", type=int, required=True, help="env steps between two evaluations")
    parser.add_argument("--eval-seeds", type=parse_seeds, required=True, help="reset seeds of the eval episodes")
    parser.add_argument("--learning-starts", type=int, required=True, help="random-action steps before learning")
    args = parser.parse_args()
    try:
        env_kwargs = json.loads(args.env_kwargs)
        assert isinstance(env_kwargs, dict)
    except (json.JSONDecodeError, AssertionError):
        parser.error(f"--env-kwargs must be a JSON object, got {args.env_kwargs!r}")
    if args.steps <= 0 or args.eval_interval <= 0 or not args.eval_seeds:
        parser.error("--steps and --eval-interval must be positive and --eval-seeds non-empty")

    import torch
    from stable_baselines3 import SAC
    from stable_baselines3.common.callbacks import BaseCallback

    torch.set_num_threads(1)
    eval_env = gym.make(args.env, **env_kwargs)
    start = time.perf_counter()

    class Evaluate(BaseCallback):
        def _on_step(self) -> bool:
            if self.num_timesteps % args.eval_interval == 0:
                returns = evaluate(self.model, eval_env, args.eval_seeds)
                emit({"env_steps": int(self.num_timesteps), "gradient_steps": int(self.model._n_updates),
                      "eval_return_mean": float(np.mean(returns)), "eval_return_std": float(np.std(returns)),
                      "wall_time_s": round(time.perf_counter() - start, 1)})
            return True

    model = SAC("MlpPolicy", gym.make(args.env, **env_kwargs), learning_starts=args.learning_starts,
                seed=args.seed, device="cpu", verbose=0)
    model.learn(total_timesteps=args.steps, callback=Evaluate())
    emit({"done": True, "env_steps": int(model.num_timesteps), "wall_time_s": round(time.perf_counter() - start, 1),
          "torch_threads": torch.get_num_threads(),
          "versions": {name: metadata.version(name) for name in ("stable_baselines3", "torch", "gymnasium")},
          "hyperparameters": {"learning_rate": model.learning_rate, "buffer_size": model.buffer_size,
                              "batch_size": model.batch_size, "tau": model.tau, "gamma": model.gamma,
                              "learning_starts": model.learning_starts, "ent_coef": "auto",
                              "net_arch": [256, 256]}})


if __name__ == "__main__":
    sys.exit(main())
