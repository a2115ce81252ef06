"""blocAndTools.tf_threads: the thread pools an update gets, one step per call or several in one XLA loop."""
import os
import subprocess
import sys
import unittest

import pytest

from blocAndTools.tf_threads import thread_setting
from tests.helpers import REPO

# Restricts itself to the CPUs given (as a Ray trial's share or a `taskset` would), then builds an agent with the
# given gradient_steps in a fresh process (TensorFlow's pools are fixed per process) and prints the pools
# TensorFlow then reports.
PROBE = """
import os, sys
os.sched_setaffinity(0, [int(cpu) for cpu in sys.argv[2].split(",")])
from blocAndTools.experiment_spec import ExperimentSpec
from SoftActorCritic.agent import SoftActorCriticAgent
import tensorflow as tf
agent = SoftActorCriticAgent(ExperimentSpec(env_id="Pendulum-v1", gradient_steps=int(sys.argv[1]),
                                            gradient_step_interval=int(sys.argv[1])))
print(tf.config.threading.get_intra_op_parallelism_threads(), tf.config.threading.get_inter_op_parallelism_threads())
"""


class ThreadSettingTest(unittest.TestCase):
    def test_one_step_per_call_one_thread_per_op_several_steps_every_core_per_op(self):
        self.assertEqual(thread_setting(2), (1, 2))
        self.assertEqual(thread_setting(2, gradient_steps=64), (2, 2))
        self.assertEqual(thread_setting(1, gradient_steps=64), (1, 1))  # a 1-CPU Ray trial
        self.assertEqual(thread_setting(8), (4, 2))  # a larger share: split between the pools

    @pytest.mark.slow  # three TensorFlow processes, about 30 s
    def test_the_agent_applies_the_setting_of_the_cpus_it_may_use(self):
        """Whatever this machine has: a process held to 1 CPU gets (1, 1), one held to 2 CPUs (1, 2) for one step
        per call and (2, 2) for several; the CPUs it may use count, not those of the machine."""
        env = {key: value for key, value in os.environ.items() if not key.startswith("TF_NUM_")}
        cpus = sorted(os.sched_getaffinity(0))
        for count, gradient_steps, expected in ((1, 4, "1 1"), (2, 1, "1 2"), (2, 4, "2 2")):
            with self.subTest(cpus=count, gradient_steps=gradient_steps):
                if len(cpus) < count:
                    self.skipTest(f"this process may use {len(cpus)} CPU only")
                share = ",".join(str(cpu) for cpu in cpus[:count])
                child = subprocess.run([sys.executable, "-c", PROBE, str(gradient_steps), share], capture_output=True,
                                       text=True, cwd=REPO, env=dict(env, PYTHONPATH=str(REPO)), timeout=300)
                self.assertEqual(child.returncode, 0, child.stderr[-2000:])
                self.assertEqual(child.stdout.split("\n")[-2], expected)


if __name__ == "__main__":
    unittest.main()
