"""Record mp4 videos of a deterministic SAC policy, in a process that never loads TensorFlow.

    python -m SoftActorCritic.record_video --spec RUN_DIR/spec.yaml --weights FILE.npz \\
        --episodes N --out-dir DIR --seed S

`python -m SoftActorCritic play --record` runs this as a child process: MuJoCo's EGL
rendering segfaults in a process with TensorFlow loaded (Mesa's llvmpipe picks up the
LLVM symbols inside libtensorflow_framework.so), so the child acts with the NumPy forward
pass of phi (SoftActorCritic.numpy_policy) from weights the parent exported.
Exit status: 0 done, 1 environment fault, 2 bad input (one line on stderr).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from blocAndTools.errors import UserInputError
from blocAndTools.experiment_spec import ExperimentSpec
from blocAndTools.gym_playground import EnvironmentFault, GymPlayground
from blocAndTools.seeding import episode_seeds
from SoftActorCritic.numpy_policy import NumpyActor


def record_episodes(spec: ExperimentSpec, policy: NumpyActor, episodes: int, out_dir: Path,
                    seed: int) -> None:
    """Write out_dir/episode-<k>.mp4 for k < episodes, printing each episode's return and video path."""
    import imageio.v2 as imageio

    out_dir.mkdir(parents=True, exist_ok=True)
    with GymPlayground(spec.env_id, spec.env_kwargs, seed=seed, max_trj_steps=spec.max_trj_steps,
                       render_mode="rgb_array") as playground:
        if (playground.obs_dim, playground.act_dim) != (policy.obs_dim, policy.act_dim):
            raise UserInputError(f"the weights are for obs/act dims {policy.obs_dim}/{policy.act_dim}, "
                                 f"{spec.env_id} has {playground.obs_dim}/{playground.act_dim}")
        for episode, episode_seed in enumerate(episode_seeds(seed, episodes, "play")):
            path = out_dir / f"episode-{episode}.mp4"
            with imageio.get_writer(path, fps=playground.env.metadata.get("render_fps", 30)) as writer:
                episode_return = playground.run_episode(policy, episode_seed, lambda: writer.append_data(playground.env.render()))
            print(f"episode {episode}: return {episode_return:.1f}, video {path}", flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m SoftActorCritic.record_video", description=__doc__.split("\n")[0])
    parser.add_argument("--spec", required=True, help="the run's spec.yaml")
    parser.add_argument("--weights", required=True, help="actor weights .npz (networks.save_actor_weights)")
    parser.add_argument("--episodes", type=int, default=1)
    parser.add_argument("--out-dir", required=True, help="folder for episode-<k>.mp4")
    parser.add_argument("--seed", type=int, default=0, help="seed of the environment")
    args = parser.parse_args(argv)
    try:
        if args.episodes < 1:
            raise UserInputError(f"--episodes {args.episodes}: must be >= 1")
        record_episodes(ExperimentSpec.from_yaml(args.spec), NumpyActor.load(args.weights),
                        args.episodes, Path(args.out_dir), args.seed)
    except UserInputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except EnvironmentFault as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
