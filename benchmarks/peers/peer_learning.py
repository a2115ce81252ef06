"""One training run of a peer library (Stable-Baselines3 or sbx), evaluated the way this project evaluates its own.

Runs only inside the peer virtual environment (benchmarks/peers/.venv): this project never
imports torch, JAX, SB3 or sbx, and this file imports nothing of the project. The learning
benchmark (benchmarks/learning_benchmark.py) calls it as a subprocess and reads its stdout, where
it prints one JSON line per evaluation and a last line {"done": true, ...} with the versions and
the hyperparameters actually used; everything the libraries print goes to stderr.

    python peer_learning.py --env Pendulum-v1 --seed 1 --steps 10000 --eval-interval 1000 \\
        --eval-seeds 11,22,33 --learning-starts 100                                   # SB3 SAC
    python peer_learning.py --library sbx --algo droq --env Hopper-v5 --seed 1 --steps 50000 \\
        --eval-interval 5000 --eval-seeds 11,22,33,44,55 --learning-starts 10000

(Named sb3_learning.py until sbx joined: the learning records written before keep that name in
their command.)

Configurations (--library, --algo), each with --learning-starts from the caller (per task) and
otherwise the library's defaults:
- sb3 sac (the default): SB3 2.9's SAC defaults (MlpPolicy net_arch [256, 256], lr 3e-4, buffer 1e6,
  batch 256, tau 0.005, gamma 0.99, train_freq 1, gradient_steps 1, ent_coef 'auto' with target
  entropy -|A|). SB3 has SAC only here (no dropout / layer-norm critics, no policy_delay).
- sbx sac: sbx.SAC's defaults, the same values as SB3's (its networks in JAX/Flax).
- sbx droq: sbx.SAC with gradient_steps=20, policy_delay=20 and
  policy_kwargs=dict(dropout_rate=0.01, layer_norm=True): the DroQ configuration of sbx's README
  ("Note about DroQ": DroQ is a special configuration of SAC since sbx 0.16; its paper
  hyperparameters there are exactly these three settings plus learning_starts, which stays the
  task's); everything else stays sbx.SAC's default (lr 3e-4 for both networks, two critics, the
  target is the min over them).
- sbx crossq: sbx.CrossQ's defaults (lr 1e-3, Adam b1 0.5, policy_delay 3, no target network,
  batch renormalisation in actor and critics, actor [256, 256], critics [1024, 1024]).

Threads, one core per run as far as each library allows: torch.set_num_threads(1) for SB3. JAX
has no thread setting, and the XLA_FLAGS usually suggested for it (--xla_cpu_multi_thread_eigen=false,
intra_op_parallelism_threads=1) do nothing in jax 0.10 (measured: the same five busy threads;
the second item is not an XLA flag at all). XLA sizes its CPU thread pool from the CPUs the process
may run on when the backend starts, so for sbx this process is pinned to one core while JAX creates
its CPU backend (JAX_PLATFORMS=cpu) and every thread is released to all cores right after: the
pool is sized for one core (measured: one busy compute thread instead of five), the scheduler
still places the threads. "xla_cpu_pool_cpus" in the done line says whether that was done.
--jax-cores all sizes the pool for every core the process may use instead: for one sbx run alone on the
machine, which then goes at least as fast as two side by side go together and finishes each record sooner
(sbx's DroQ on Hopper-v5, 2 cores: alone on both cores 214 ms per env step over the first 5,000 training
steps and 271 over a whole 50k run, 2026-12-03; two side by side on one core each about 450 ms each over
their first 5,000, about 225 for the pair, 2026-12-02; a 200-step timing after warm-up gave 168 alone).

Evaluation, identical to the project's agent: every --eval-interval env steps (a callback at
num_timesteps = k * interval; SB3 and sbx call it after the env step and before that step's
gradient steps), one episode per seed of --eval-seeds on a separate environment, reset(seed=s),
actions model.predict(obs, deterministic=True) (tanh of the mean, rescaled to the bounds), until
terminated or truncated (the environment's own time limit); the line reports the mean and the
population std of the returns.

Resuming (sbx only, --state FILE): at each evaluation but the last, right after it, the run's state is written to
FILE (one npz, no pickle: SB3 and sbx save models with pickle, which this project does not use): the flax train
states (parameters, Adam moments, target parameters or batch statistics, the temperature), the JAX keys, the
replay buffer's rows, NumPy's global generator (SB3's buffer samples with it), the warm-up's action-space
generator, the update counter, and the evaluations so far. That is the state after the evaluation's env step minus
one (SB3 calls the callback before storing that step's transition and running its gradient steps). When FILE
exists, the run restores it, prints the evaluations it holds again, and goes on from there, restarting the
training episode that was under way (the environment's own state is not saved): a resumed run is not the
bit-for-bit continuation of an uninterrupted one. Its first evaluation is the last one before the interruption,
recomputed from the restored state on the same episodes: a different result means the state did not come back
whole, and the run stops (exit 1). The done line lists the env steps it resumed at ("resumed_at"). SB3 runs
are not resumable (its torch state is not saved here): an interrupted one is rerun from the start.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from importlib import metadata
from pathlib import Path

import gymnasium as gym
import numpy as np

# One clean JSON stream on stdout: keep the real stdout for it, send fd 1 to stderr (the imports above print
# nothing; torch, JAX, SB3 and sbx, imported in main, go to stderr).
_JSON_OUT = os.fdopen(os.dup(1), "w")
os.dup2(2, 1)

ALGOS = {"sb3": ("sac",), "sbx": ("sac", "droq", "crossq")}
DROQ = {"gradient_steps": 20, "policy_delay": 20, "policy_kwargs": {"dropout_rate": 0.01, "layer_norm": True}}
VERSIONS = {"sb3": ("stable_baselines3", "torch", "gymnasium"),
            "sbx": ("sbx-rl", "stable_baselines3", "jax", "jaxlib", "flax", "optax", "gymnasium")}


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


def start_jax(cores: str) -> int | None:
    """Start JAX's CPU backend with its thread pool sized for one core ("one": then every thread is released to all
    the cores it may use) or for all of them ("all"), see the module docstring; the pool's CPU count, None where the
    OS has no affinity call."""
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    allowed = os.sched_getaffinity(0) if hasattr(os, "sched_setaffinity") else None
    if allowed is not None and cores == "one":
        os.sched_setaffinity(0, {min(allowed)})
    import jax
    jax.devices()  # the CPU client and its intra-op thread pool are created here
    if allowed is None:
        return None
    if cores == "all":
        return len(allowed)
    for thread in os.listdir("/proc/self/task"):
        with contextlib.suppress(OSError):  # a thread that ended meanwhile
            os.sched_setaffinity(int(thread), allowed)
    return 1


def make_model(library: str, algo: str, env: gym.Env, learning_starts: int, seed: int):
    """The model of (library, algo) with the configuration of the module docstring."""
    if library == "sb3":
        from stable_baselines3 import SAC
        return SAC("MlpPolicy", env, learning_starts=learning_starts, seed=seed, device="cpu", verbose=0)
    from sbx import SAC, CrossQ
    if algo == "crossq":
        return CrossQ("MlpPolicy", env, learning_starts=learning_starts, seed=seed, verbose=0)
    return SAC("MlpPolicy", env, learning_starts=learning_starts, seed=seed, verbose=0,
               **(DROQ if algo == "droq" else {}))


def plain(value):
    """A JSON-ready copy of a hyperparameter (numpy scalars, tuples and named tuples become numbers and lists)."""
    if isinstance(value, dict):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return getattr(value, "__name__", repr(value))


def sbx_hyperparameters(model) -> dict:
    """The settings the sbx model trains with, read back from it (its defaults included)."""
    policy = model.policy
    found = {"algorithm": type(model).__name__, "learning_rate": model.learning_rate,
             "qf_learning_rate": model.qf_learning_rate, "buffer_size": model.buffer_size,
             "batch_size": model.batch_size, "gamma": model.gamma,
             "learning_starts": model.learning_starts, "train_freq": [model.train_freq.frequency,
                                                                      model.train_freq.unit.value],
             "gradient_steps": model.gradient_steps, "policy_delay": model.policy_delay,
             "ent_coef": model.ent_coef_init, "target_entropy": model.target_entropy,
             "net_arch": {"pi": policy.net_arch_pi, "qf": policy.net_arch_qf}, "n_critics": policy.n_critics,
             "dropout_rate": policy.dropout_rate, "layer_norm": policy.layer_norm,
             "activation_fn": policy.activation_fn, "optimizer": policy.optimizer_class,
             "optimizer_kwargs": policy.optimizer_kwargs}
    if type(model).__name__ != "CrossQ":  # CrossQ has no target networks (its tau attribute is unused)
        found["tau"] = model.tau
    for name in ("batch_norm", "batch_norm_actor", "batch_norm_momentum", "renorm_warmup_steps"):  # CrossQ's
        if hasattr(policy, name):
            found[name] = getattr(policy, name)
    return plain(found)


BUFFER_FIELDS = ("observations", "next_observations", "actions", "rewards", "dones", "timeouts")


def sbx_train_states(model) -> dict:
    """The sbx model's learned state as one pytree: flax train states (with their optimizer states) and JAX keys."""
    return {"actor": model.policy.actor_state, "qf": model.policy.qf_state, "ent_coef": model.ent_coef_state,
            "key": model.key, "policy_key": model.policy.key, "noise_key": model.policy.noise_key}


def save_state(model, path: Path, config: dict, evaluations: list[dict], resumed_at: list[int]) -> None:
    """Write the run's state (module docstring, "Resuming") to `path` atomically: a temporary file, then a rename."""
    from flax import serialization
    buffer = model.replay_buffer
    rows = buffer.buffer_size if buffer.full else buffer.pos
    generator, keys, position, has_gauss, cached_gaussian = np.random.get_state()
    meta = {"config": config, "evaluations": evaluations, "resumed_at": resumed_at,
            "num_timesteps": int(model.num_timesteps) - 1,
            "n_updates": int(model._n_updates), "episode_num": int(model._episode_num),
            "buffer_pos": int(buffer.pos), "buffer_full": bool(buffer.full),
            "np_random": [generator, int(position), int(has_gauss), float(cached_gaussian)],
            "action_space_random": model.action_space.np_random.bit_generator.state}
    arrays = {f"buffer_{name}": getattr(buffer, name)[:rows] for name in BUFFER_FIELDS
              if getattr(buffer, name, None) is not None}  # no next_observations with optimize_memory_usage
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "wb") as handle:
        np.savez(handle, meta=np.array(json.dumps(meta)), np_random_keys=keys,
                 train_states=np.frombuffer(serialization.to_bytes(sbx_train_states(model)), np.uint8), **arrays)
    os.replace(temporary, path)


def restore_state(model, path: Path, config: dict) -> tuple[list[dict], list[int]]:
    """Load the state save_state wrote into the freshly built `model`; the evaluations it holds and the env steps
    the run resumed at, this time included. A state written by another configuration ends the program with one
    line (exit 2)."""
    from flax import serialization
    with np.load(path, allow_pickle=False) as saved:
        meta = json.loads(str(saved["meta"]))
        if meta["config"] != config:
            differs = sorted(key for key in {*config, *meta["config"]} if config.get(key) != meta["config"].get(key))
            print(f"peer_learning.py: error: --state {path} was written by a run with another {', '.join(differs)}; "
                  "delete it to start this run from zero", file=sys.stderr)
            sys.exit(2)
        states = serialization.from_bytes(sbx_train_states(model), saved["train_states"].tobytes())
        buffer = model.replay_buffer
        for name in BUFFER_FIELDS:
            if f"buffer_{name}" in saved:
                rows = saved[f"buffer_{name}"]
                getattr(buffer, name)[:len(rows)] = rows
        keys = saved["np_random_keys"]
    model.policy.actor_state, model.policy.qf_state, model.ent_coef_state = (
        states["actor"], states["qf"], states["ent_coef"])
    model.key, model.policy.key, model.policy.noise_key = states["key"], states["policy_key"], states["noise_key"]
    buffer.pos, buffer.full = meta["buffer_pos"], meta["buffer_full"]
    model.num_timesteps, model._n_updates, model._episode_num = (
        meta["num_timesteps"], meta["n_updates"], meta["episode_num"])
    generator, position, has_gauss, cached_gaussian = meta["np_random"]
    np.random.set_state((generator, keys, position, has_gauss, cached_gaussian))
    model.action_space.np_random.bit_generator.state = meta["action_space_random"]
    return meta["evaluations"], [*meta["resumed_at"], model.num_timesteps + 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--library", choices=tuple(ALGOS), default="sb3", help="sb3 (PyTorch) or sbx (JAX)")
    parser.add_argument("--algo", choices=ALGOS["sbx"], default="sac", help="sac; droq and crossq: sbx only")
    parser.add_argument("--env", required=True, help="gymnasium id, e.g. Pendulum-v1")
    parser.add_argument("--env-kwargs", default="{}", help='JSON object for gym.make, e.g. {"continuous": true}')
    parser.add_argument("--seed", type=int, required=True, help="the model's seed: networks, buffer, env, actions")
    parser.add_argument("--steps", type=int, required=True, help="total_timesteps")
    parser.add_argument("--eval-interval", type=int, required=True, help="env steps between two evaluations")
    parser.add_argument("--eval-seeds", type=parse_seeds, required=True, help="reset seeds of the eval episodes")
    parser.add_argument("--learning-starts", type=int, required=True, help="random-action steps before learning")
    parser.add_argument("--state", type=Path, help="sbx only: the run's state file (npz), written at each evaluation; "
                                                   "when it exists the run resumes from it (module docstring)")
    parser.add_argument("--jax-cores", choices=("one", "all"), default="one",
                        help="sbx only: JAX's thread pool for one core (runs side by side) or for all of them (one run "
                             "alone; module docstring)")
    args = parser.parse_args()
    try:
        env_kwargs = json.loads(args.env_kwargs)
        assert isinstance(env_kwargs, dict)
    except (json.JSONDecodeError, AssertionError):
        parser.error(f"--env-kwargs must be a JSON object, got {args.env_kwargs!r}")
    if args.steps <= 0 or args.eval_interval <= 0 or not args.eval_seeds:
        parser.error("--steps and --eval-interval must be positive and --eval-seeds non-empty")
    if args.algo not in ALGOS[args.library]:
        parser.error(f"--algo {args.algo}: {args.library} runs {', '.join(ALGOS[args.library])} only")
    if args.state is not None and args.library != "sbx":
        parser.error("--state: only sbx runs resume")
    if args.jax_cores != "one" and args.library != "sbx":
        parser.error("--jax-cores: sbx only (SB3 runs on one torch thread)")

    if args.library == "sb3":
        import torch
        torch.set_num_threads(1)
        threads = {"torch_threads": torch.get_num_threads()}
    else:
        threads = {"xla_cpu_pool_cpus": start_jax(args.jax_cores)}
    from stable_baselines3.common.callbacks import BaseCallback

    eval_env = gym.make(args.env, **env_kwargs)
    model = make_model(args.library, args.algo, gym.make(args.env, **env_kwargs), args.learning_starts, args.seed)
    config = {key: value for key, value in vars(args).items() if key != "state"}
    evaluations, resumed_at = [], []
    if args.state is not None and args.state.exists():
        evaluations, resumed_at = restore_state(model, args.state, config)
        for item in evaluations:
            emit(item)
    start = time.perf_counter() - (evaluations[-1]["wall_time_s"] if evaluations else 0.0)

    class Evaluate(BaseCallback):
        def _on_step(self) -> bool:
            if self.num_timesteps % args.eval_interval:
                return True
            returns = evaluate(self.model, eval_env, args.eval_seeds)
            item = {"env_steps": int(self.num_timesteps), "gradient_steps": int(self.model._n_updates),
                    "eval_return_mean": float(np.mean(returns)), "eval_return_std": float(np.std(returns)),
                    "wall_time_s": round(time.perf_counter() - start, 1)}
            if resumed_at and self.num_timesteps == resumed_at[-1]:  # the restored state's check (docstring)
                got, before = ({key: value for key, value in record.items() if key != "wall_time_s"}
                               for record in (item, evaluations[-1]))
                if got != before:
                    sys.exit(f"peer_learning.py: the state restored from {args.state} evaluates to {got}, "
                             f"not to {before} as before the interruption")
                return True
            emit(item)
            evaluations.append(item)
            if args.state is not None and self.num_timesteps < args.steps:
                save_state(self.model, args.state, config, evaluations, resumed_at)
            return True

    model.learn(total_timesteps=args.steps - model.num_timesteps, callback=Evaluate(),
                reset_num_timesteps=not resumed_at)
    if args.library == "sb3":
        hyperparameters = {"learning_rate": model.learning_rate, "buffer_size": model.buffer_size,
                           "batch_size": model.batch_size, "tau": model.tau, "gamma": model.gamma,
                           "learning_starts": model.learning_starts, "ent_coef": "auto", "net_arch": [256, 256]}
    else:
        hyperparameters = sbx_hyperparameters(model)
    emit({"done": True, "env_steps": int(model.num_timesteps), "wall_time_s": round(time.perf_counter() - start, 1),
          "library": args.library, "algo": args.algo, **threads, **({"resumed_at": resumed_at} if resumed_at else {}),
          "versions": {name: metadata.version(name) for name in VERSIONS[args.library]},
          "hyperparameters": hyperparameters})


if __name__ == "__main__":
    sys.exit(main())
