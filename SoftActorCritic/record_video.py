"""Record mp4 videos of a deterministic SAC policy, in a process that never loads TensorFlow.

    python -m SoftActorCritic.record_video --policy POLICY.npz --episodes N --out-dir DIR --seed S

`sac play --record` runs this as a child process: MuJoCo's EGL rendering segfaults in a
process with TensorFlow loaded (Mesa's llvmpipe picks up the LLVM symbols inside
libtensorflow_framework.so), so the child acts with the run's policy file in NumPy
(SoftActorCritic.numpy_policy). Episode k starts from the run's k-th "play" seed.
Exit status: 0 done, 1 environment fault, 2 bad input (one line on stderr).
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from rich.progress import Progress

from blocAndTools.errors import UserInputError, run_command
from blocAndTools.gym_playground import GymPlayground
from blocAndTools.seeding import episode_seeds
from SoftActorCritic.numpy_policy import Policy

MACRO_BLOCK = 16  # video codecs want frame sides divisible by 16 (imageio would resize, with a warning)


def pad_frame(frame: np.ndarray) -> np.ndarray:
    """The frame with black rows and columns added at the bottom and right up to multiples of MACRO_BLOCK."""
    height, width = frame.shape[:2]
    return np.pad(frame, ((0, -height % MACRO_BLOCK), (0, -width % MACRO_BLOCK), (0, 0)))


def video_path(out_dir: Path, policy: Policy, episode: int) -> Path:
    """out_dir/step<env steps>-episode-<k>.mp4, with -2, -3, ... when that file exists: never overwrite a video."""
    stem = f"step{policy.env_steps}-episode-{episode}"
    path, copy = out_dir / f"{stem}.mp4", 1
    while path.exists():
        copy += 1
        path = out_dir / f"{stem}-{copy}.mp4"
    return path


def record_episodes(policy: Policy, episodes: int, out_dir: Path, seed: int, max_trj_steps: int | None = None) -> None:
    """Write one video per episode (video_path) to out_dir, with a progress bar and one line per episode."""
    import imageio.v2 as imageio

    out_dir.mkdir(parents=True, exist_ok=True)
    with GymPlayground(policy.env_id, policy.env_kwargs, max_trj_steps=max_trj_steps,
                       render_mode="rgb_array") as playground, Progress(transient=True) as progress:
        if (playground.obs_dim, playground.act_dim) != (policy.obs_dim, policy.act_dim):
            raise UserInputError(f"the policy is for obs/act dims {policy.obs_dim}/{policy.act_dim}, "
                                 f"{policy.env_id} has {playground.obs_dim}/{playground.act_dim}")
        for episode, episode_seed in enumerate(episode_seeds(seed, episodes, "play")):
            path = video_path(out_dir, policy, episode)
            frames = progress.add_task(f"recording episode {episode + 1}/{episodes}",
                                       total=playground.max_episode_steps)
            with imageio.get_writer(path, fps=playground.env.metadata.get("render_fps", 30)) as writer:
                def grab_frame(writer=writer, task=frames) -> None:  # bound now: a new writer and task each episode
                    writer.append_data(pad_frame(playground.env.render()))
                    progress.advance(task)
                episode_return = playground.run_episode(policy.actor, episode_seed, grab_frame)
            progress.remove_task(frames)
            progress.console.print(f"episode {episode}: return {episode_return:.1f}, video {path}", highlight=False)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m SoftActorCritic.record_video", description=__doc__.split("\n")[0])
    parser.add_argument("--policy", required=True, help="policy file (a run's checkpoints/policy-<N>.npz)")
    parser.add_argument("--episodes", type=int, default=1, help="number of episodes, one video each")
    parser.add_argument("--out-dir", required=True, help="folder for the videos, step<N>-episode-<k>.mp4")
    parser.add_argument("--seed", type=int, default=0, help="the run's seed: episodes start from its play seeds")
    parser.add_argument("--max-trj-steps", type=int, default=None, help="time limit of an episode in steps")
    args = parser.parse_args(argv)

    def record() -> None:
        if args.episodes < 1:
            raise UserInputError(f"--episodes {args.episodes}: must be >= 1")
        record_episodes(Policy.load(args.policy), args.episodes, Path(args.out_dir), args.seed, args.max_trj_steps)
    return run_command(record)


if __name__ == "__main__":
    sys.exit(main())
