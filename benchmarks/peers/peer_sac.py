"""Stable-Baselines3 SAC (PyTorch) and sbx SAC (JAX) timed the way this project times itself.

Runs only inside the peer virtual environment (benchmarks/peers/.venv, made by
`bash benchmarks/peers/setup.sh`): the project never imports torch, SB3, JAX or sbx. It
calls this file as a subprocess (benchmarks/peer_benchmark.py, run_peer) and reads the one
JSON line printed on stdout; everything else the libraries print goes to stderr.

    python peer_sac.py --library sb3 --measure train_step --width 256 --batch 256
    python peer_sac.py --library sbx --measure action --width 64
    python peer_sac.py --library sb3 --measure throughput --steps 2000 --min-pool 1000

Settings mirror the project's specs: MlpPolicy with net_arch [W, W] for the actor and both
critics, batch B, gamma 0.99, tau 0.005, lr 3e-4, one gradient step per env step
(train_freq=1, gradient_steps=1), ent_coef 'auto' (their default: a learned temperature,
so the project's closest variant is v2 with alpha 'auto'). Thread counts are left at the
libraries' defaults (torch.set_num_threads is not called; XLA uses every core), as a user
of either library would run them.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import time
from importlib import metadata

import gymnasium as gym
import numpy as np

# Exactly one JSON line on stdout: keep the real stdout for it and send fd 1 to stderr, so
# whatever the libraries print (Python prints and C-level writes alike) cannot mix in (the imports
# above print nothing; torch, JAX, SB3 and sbx are imported in the functions below).
_JSON_OUT = os.fdopen(os.dup(1), "w")
os.dup2(2, 1)
os.environ.setdefault("JAX_PLATFORMS", "cpu")  # no accelerator probing messages; CPU only here anyway

LIBRARIES = ("sb3", "sbx")
ALGOS = ("sac", "droq", "crossq")  # droq and crossq: sbx only
DROQ_UTD = 20  # DroQ's gradient steps per env step, and its policy_delay: one actor update per env step
MEASURES = ("train_step", "action", "throughput")


def versions() -> dict[str, str]:
    """Installed versions of the libraries that matter for these numbers (read from metadata, nothing imported)."""
    found = {"python": platform.python_version()}
    for name in ("stable_baselines3", "sbx-rl", "torch", "jax", "jaxlib", "flax", "gymnasium", "mujoco", "numpy"):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def make_model(library: str, env_id: str, width: int, batch: int, buffer_size: int, learning_starts: int, seed: int,
               train_freq: int = 1, gradient_steps: int = 1, algo: str = "sac"):
    """A SAC model of the given library with the project's hyperparameters (see the module docstring); sbx's
    algo droq: SAC with dropout 0.01 and layer norm in the critics and policy_delay 20 (sbx's README, "Note about
    DroQ"), crossq: sbx's CrossQ with its defaults except the batch size (its networks are its own: actor
    [256, 256], critics [1024, 1024], batch renormalisation)."""
    if algo == "crossq":
        from sbx import CrossQ
        return CrossQ("MlpPolicy", gym.make(env_id), buffer_size=buffer_size, learning_starts=learning_starts,
                      batch_size=batch, train_freq=train_freq, gradient_steps=gradient_steps, seed=seed, verbose=0)
    if algo == "droq":
        from sbx import SAC
        return SAC("MlpPolicy", gym.make(env_id), learning_rate=3e-4, buffer_size=buffer_size,
                   learning_starts=learning_starts, batch_size=batch, tau=0.005, gamma=0.99, train_freq=train_freq,
                   gradient_steps=gradient_steps, policy_delay=DROQ_UTD, ent_coef="auto", seed=seed, verbose=0,
                   policy_kwargs={"net_arch": [width, width], "dropout_rate": 0.01, "layer_norm": True})
    if library == "sb3":
        from stable_baselines3 import SAC
        extra = {"device": "cpu"}
    else:
        from sbx import SAC
        extra = {}
    return SAC("MlpPolicy", gym.make(env_id), learning_rate=3e-4, buffer_size=buffer_size,
               learning_starts=learning_starts, batch_size=batch, tau=0.005, gamma=0.99, train_freq=train_freq,
               gradient_steps=gradient_steps, ent_coef="auto", policy_kwargs={"net_arch": [width, width]}, seed=seed,
               verbose=0, **extra)


def wait_for(library: str, model) -> None:
    """Return only when the model's last update has really finished.

    PyTorch on CPU runs eagerly, so its work is done when train() returns. JAX dispatches
    asynchronously: without blocking on the updated parameters a timer would stop before
    the computation has (sbx's train() already reads its losses with .item(); this makes
    the wait explicit and independent of that detail).
    """
    if library == "sbx":
        import jax
        jax.block_until_ready((model.policy.actor_state.params, model.policy.qf_state.params,
                               model.ent_coef_state.params))


def median_of_blocks(call, blocks: int, per_block: int) -> float:
    """Median over `blocks` timed blocks of the mean seconds of one call in a block of `per_block` calls."""
    times = []
    for _ in range(blocks):
        start = time.perf_counter()
        call(per_block)
        times.append((time.perf_counter() - start) / per_block)
    return statistics.median(times)


def measure_train_step(args) -> dict:
    """Median milliseconds of one gradient step, from a buffer of --steps random transitions of the env.

    The buffer is filled by learn() itself with learning_starts = --steps, so it collects
    exactly --steps transitions with uniform random actions (real HalfCheetah data,
    episode ends handled by SB3) and never trains; the logger is also set up by it.
    Two timings, both after a warm-up block (sbx compiles there):
      ms_per_step:         model.train(gradient_steps=S, batch_size=B), per step. SB3 loops
                           in Python (one buffer sample per step); sbx samples S*B at once
                           and runs the S updates in one compiled fori_loop.
      ms_per_step_train1:  S calls of model.train(gradient_steps=1, batch_size=B): how
                           learn() calls it with train_freq=1, gradient_steps=1, and how the
                           project's own benchmark calls train_step (one call per step).
    """
    model = make_model(args.library, args.env, args.width, args.batch, args.steps, args.steps, args.seed,
                       algo=args.algo)
    model.learn(total_timesteps=args.steps)
    assert model._n_updates == 0 and model.replay_buffer.size() == args.steps

    def fused(steps: int) -> None:
        model.train(gradient_steps=steps, batch_size=args.batch)
        wait_for(args.library, model)

    def one_per_call(steps: int) -> None:
        for _ in range(steps):
            model.train(gradient_steps=1, batch_size=args.batch)
        wait_for(args.library, model)

    fused(args.steps_per_block)
    seconds = median_of_blocks(fused, args.blocks, args.steps_per_block)
    one_per_call(args.steps_per_block)
    seconds_train1 = median_of_blocks(one_per_call, args.blocks, args.steps_per_block)
    return {"ms_per_step": seconds * 1e3, "steps_per_s": 1.0 / seconds,
            "ms_per_step_train1": seconds_train1 * 1e3, "steps_per_s_train1": 1.0 / seconds_train1,
            "gradient_steps_done": int(model._n_updates), "buffer_transitions": args.steps}


def measure_action(args) -> dict:
    """Median microseconds of one stochastic action for one observation.

    action_predict_us:      model.predict(obs, deterministic=False) with obs of shape
                            (1, obs_dim), which is what their training loop calls
                            (_sample_action -> predict(self._last_obs)) and what users call.
    action_policy_call_us:  the policy network alone, output as NumPy: SB3
                            model.actor(tensor) under torch.no_grad(); sbx the jitted
                            BaseJaxPolicy.sample_action(actor_state, obs, key) with a fixed
                            key (predict also splits a new key, unscales and clips).
    """
    model = make_model(args.library, args.env, args.width, args.batch, 1000, 0, args.seed)
    obs, _ = gym.make(args.env).reset(seed=args.seed)
    obs = obs[None]  # the vectorized (1, obs_dim) observation of their training loop

    def predict(calls: int) -> None:
        for _ in range(calls):
            model.predict(obs, deterministic=False)

    if args.library == "sb3":
        import torch
        obs_tensor_input = obs.astype(np.float32)

        def policy_call(calls: int) -> None:
            with torch.no_grad():
                for _ in range(calls):
                    model.actor(torch.as_tensor(obs_tensor_input)).numpy()
    else:
        import jax
        from sbx.common.policies import BaseJaxPolicy
        key = jax.random.PRNGKey(args.seed)

        def policy_call(calls: int) -> None:
            for _ in range(calls):
                np.asarray(BaseJaxPolicy.sample_action(model.policy.actor_state, obs, key))

    predict(20)  # warm-up (sbx: compile)
    policy_call(20)
    predict_s = median_of_blocks(predict, args.blocks, args.steps_per_block)
    policy_s = median_of_blocks(policy_call, args.blocks, args.steps_per_block)
    return {"action_predict_us": predict_s * 1e6, "action_policy_call_us": policy_s * 1e6}


def measure_throughput(args) -> dict:
    """Environment steps per second of model.learn(--steps) over the steps after learning_starts = --min-pool.

    One learn() call with a callback that reads the clock when num_timesteps reaches M
    (and M + 100). SB3's loop runs: env step, num_timesteps += 1, callback, then a gradient
    step only if num_timesteps > learning_starts. So the clock read at num_timesteps == M
    comes after the last random-action step and before the first gradient step, and the
    remaining N - M steps each take one policy action, one env step and one gradient step:
    exactly the steady state of training. Two learn() calls (M random steps, then N - M with
    reset_num_timesteps=False) would time the same loop, but add a second setup (logger,
    episode statistics) to the measured part; the callback times the one loop a user runs.
    --train-freq F and --gradient-steps G: G gradient steps every F env steps (default 1 and 1).
    steps_per_s (env steps per second) counts every step after M, sbx's one-time JIT
    compilation included; steps_per_s_warm leaves out the first 100 of them;
    random_steps_per_s is the rate of the first M (setup included); peak_rss_mb is the
    process's peak resident memory in MiB (ru_maxrss).
    """
    from stable_baselines3.common.callbacks import BaseCallback

    start_at, warm_at = args.min_pool, args.min_pool + 100
    clock: dict[str, float] = {}

    class Clock(BaseCallback):
        def _on_step(self) -> bool:
            if self.num_timesteps in (start_at, warm_at):
                clock[self.num_timesteps] = time.perf_counter()
            return True

    model = make_model(args.library, args.env, args.width, args.batch, 1_000_000, args.min_pool, args.seed,
                       args.train_freq, args.gradient_steps)
    begin = time.perf_counter()
    model.learn(total_timesteps=args.steps, callback=Clock())
    wait_for(args.library, model)
    end = time.perf_counter()
    result = {"env_steps": args.steps, "learning_starts": args.min_pool,
              "gradient_steps_done": int(model._n_updates),
              "random_steps_per_s": args.min_pool / (clock[start_at] - begin),
              "steps_per_s": (args.steps - args.min_pool) / (end - clock[start_at]),
              "steps_per_s_warm": None,
              "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}  # Linux: KiB -> MiB
    if warm_at in clock and args.steps > warm_at:
        result["steps_per_s_warm"] = (args.steps - warm_at) / (end - clock[warm_at])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--library", choices=LIBRARIES, required=True)
    parser.add_argument("--measure", choices=MEASURES, required=True)
    parser.add_argument("--algo", choices=ALGOS, default="sac",
                        help="train_step: sac, or sbx's droq / crossq (see make_model)")
    parser.add_argument("--width", type=int, default=256, help="hidden layer width W: net_arch [W, W]")
    parser.add_argument("--batch", type=int, default=256, help="minibatch size B")
    parser.add_argument("--env", default="HalfCheetah-v5", help="gymnasium id (its spaces size the networks)")
    parser.add_argument("--steps", type=int, default=10_000,
                        help="train_step: random transitions in the buffer; throughput: total_timesteps N")
    parser.add_argument("--min-pool", type=int, default=1_000, help="throughput: learning_starts M (< N)")
    parser.add_argument("--train-freq", type=int, default=1, help="throughput: env steps between two train() calls")
    parser.add_argument("--gradient-steps", type=int, default=1, help="throughput: gradient steps per train() call")
    parser.add_argument("--blocks", type=int, default=5, help="timed blocks K (the median is reported)")
    parser.add_argument("--steps-per-block", type=int, default=None,
                        help="gradient steps (train_step, default 50) or action calls (action, default 400) per block")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.steps_per_block is None:
        args.steps_per_block = 400 if args.measure == "action" else 50
    if args.measure == "throughput" and not 0 < args.min_pool < args.steps:
        parser.error("throughput needs 0 < --min-pool < --steps")
    if args.measure == "train_step" and args.steps < args.batch:
        parser.error("train_step needs --steps >= --batch")
    if args.algo != "sac" and (args.library != "sbx" or args.measure != "train_step"):
        parser.error("--algo droq / crossq: sbx's train_step only")

    measure = {"train_step": measure_train_step, "action": measure_action, "throughput": measure_throughput}
    result = {"library": args.library, "algo": args.algo, "measure": args.measure, "env": args.env, "width": args.width,
              "batch": args.batch, "seed": args.seed}
    if args.measure != "throughput":
        result.update(blocks=args.blocks, steps_per_block=args.steps_per_block)
    result.update(measure[args.measure](args))
    if args.library == "sb3":
        import torch
        result["torch_threads"] = torch.get_num_threads()
    result.update({"cpu_count": os.cpu_count(), "processor": platform.processor() or platform.machine(),
                   "versions": versions()})
    _JSON_OUT.write(json.dumps(result) + "\n")
    _JSON_OUT.flush()


if __name__ == "__main__":
    main()
