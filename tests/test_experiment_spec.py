"""ExperimentSpec: defaults, YAML loading, overrides, validation and grid expansion."""
import importlib.util
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

from blocAndTools import ExperimentSpec, UserInputError
from blocAndTools.experiment_spec import (
    expand_grid,
    field_docs,
    is_grid_value,
    is_text_field,
    load_raw_spec,
)


def write_spec(folder: str, text: str, name: str = "exp.yaml") -> Path:
    path = Path(folder) / name
    path.write_text(text)
    return path


class DefaultsTest(unittest.TestCase):
    def test_general_defaults(self):
        # the paper's network sizes, discount, target rate and batch; a learned temperature (SAC v2's), no reward
        # scale, critic learning rate 1e-3 and a warm-up of five time limits (issue 26: the general default)
        spec = ExperimentSpec()
        self.assertEqual((spec.discount_factor, spec.actor_learning_rate, spec.critic_learning_rate,
                          spec.target_smoothing_coefficient, spec.target_update_interval, spec.batch_size_in_ts),
                         (0.99, 3e-4, 1e-3, 0.005, 1, 256))
        self.assertEqual((spec.alpha, spec.reward_scaling, spec.min_pool_size), ("auto", 1.0, "auto"))
        self.assertEqual(spec.phi_nn_h_layer_topo, (256, 256))
        self.assertEqual((spec.variant, spec.q_backup, spec.actor_gradient), ("v1", "clipped", "reparametrize"))

    def test_docs_page_names_every_field_sac_fields_lists(self):
        # The docs' spec-fields page is generated at build time by docs/hooks.py (mkdocs is not needed here).
        root = Path(__file__).resolve().parent.parent
        hooks_spec = importlib.util.spec_from_file_location("docs_hooks", root / "docs" / "hooks.py")
        hooks = importlib.util.module_from_spec(hooks_spec)
        hooks_spec.loader.exec_module(hooks)
        self.assertIn(hooks.SPEC_FIELDS_MARKER, (root / "docs" / "spec-fields.md").read_text())
        listed = subprocess.run([sys.executable, "-m", "SoftActorCritic", "fields"], capture_output=True, text=True,
                                check=True, cwd=root).stdout
        names = [line.split()[0] for line in listed.splitlines() if line.strip()]
        self.assertIn("seed", names)
        page = hooks.spec_fields_markdown()
        self.assertEqual([name for name in names if f"| `{name}` |" not in page], [])

    def test_every_field_has_a_docstring(self):
        docs = field_docs()
        missing = [name for name in ExperimentSpec.__dataclass_fields__ if not docs.get(name)]
        self.assertEqual(missing, [])


    def test_auto_warmup_is_five_time_limits_within_the_pool(self):
        # Pendulum (200), MuJoCo (1000), no time limit (counted 1000), a pool smaller than that, a large batch
        spec = ExperimentSpec()
        self.assertEqual([spec.warmup_steps(limit) for limit in (200, 1000, None)], [1000, 5000, 5000])
        self.assertEqual(ExperimentSpec(pool_capacity=3000).warmup_steps(1000), 3000)
        self.assertEqual(ExperimentSpec(batch_size_in_ts=2048).warmup_steps(200), 2048)
        self.assertEqual(ExperimentSpec(min_pool_size=300).warmup_steps(1000), 300)  # a number is taken as it is


class LoadingTest(unittest.TestCase):
    def test_yaml_overrides_and_roundtrip(self):
        with tempfile.TemporaryDirectory() as folder:
            path = write_spec(folder, "env_id: Pendulum-v1\nalpha: 0.2\nphi_nn_h_layer_topo: [64, 64]\n")
            spec = ExperimentSpec.from_yaml(path, ["alpha=auto", "actor_learning_rate=1e-3", "seed=7"])
            self.assertEqual(spec.name, "exp")
            self.assertEqual(spec.alpha, "auto")
            self.assertEqual(spec.actor_learning_rate, 1e-3)
            self.assertEqual(spec.phi_nn_h_layer_topo, (64, 64))
            spec.to_yaml(Path(folder) / "spec.yaml")
            self.assertEqual(ExperimentSpec.from_yaml(Path(folder) / "spec.yaml"), spec)

    def test_text_fields_are_those_whose_type_takes_a_string(self):
        names = ("env_id", "alpha", "seed", "actor_learning_rate", "phi_nn_h_layer_topo", "grid", "min_pool_size")
        self.assertEqual([name for name in names if is_text_field(name)], ["env_id", "alpha", "min_pool_size"])

    def test_integer_is_accepted_for_a_float_field(self):
        self.assertEqual(ExperimentSpec(reward_scaling=5).reward_scaling, 5.0)

    def test_another_env_id_drops_the_files_goal(self):
        # a spec's expected_reward_goal is a return on its own environment: -200 on Pendulum means nothing on Hopper
        with tempfile.TemporaryDirectory() as folder:
            path = write_spec(folder, "env_id: Pendulum-v1\nexpected_reward_goal: -200\n")
            self.assertEqual(load_raw_spec(path)["expected_reward_goal"], -200)
            self.assertEqual(load_raw_spec(path, ["env_id=Pendulum-v1"])["expected_reward_goal"], -200)
            self.assertNotIn("expected_reward_goal", load_raw_spec(path, ["env_id=Hopper-v5"]))
            self.assertIsNone(ExperimentSpec.from_yaml(path, ["env_id=Hopper-v5"]).expected_reward_goal)
            given = load_raw_spec(path, ["env_id=Hopper-v5", "expected_reward_goal=3000"])
            self.assertEqual(given["expected_reward_goal"], 3000)


class RenamedFieldTest(unittest.TestCase):
    """learning_rate became actor_learning_rate: old spec files, old run folders' spec.yaml and --set still load."""

    def test_the_old_name_loads_from_a_file_a_set_and_a_grid_point(self):
        with tempfile.TemporaryDirectory() as folder:
            old_file = write_spec(folder, "learning_rate: 1.0e-3\n")
            new_file = write_spec(folder, "seed: 1\n", "new.yaml")
            self.assertEqual(ExperimentSpec.from_yaml(old_file).actor_learning_rate, 1e-3)
            self.assertEqual(ExperimentSpec.from_yaml(new_file, ["learning_rate=2e-3"]).actor_learning_rate, 2e-3)
            # a file's old name, overridden by --set with the new one
            self.assertEqual(ExperimentSpec.from_yaml(old_file, ["actor_learning_rate=4e-3"]).actor_learning_rate, 4e-3)
            raw = load_raw_spec(write_spec(folder, "grid:\n  - {learning_rate: 1.0e-3}\n  - {learning_rate: 3.0e-3}\n"))
            self.assertEqual([spec.actor_learning_rate for spec in expand_grid(raw)], [1e-3, 3e-3])

    def test_both_names_at_once_is_a_one_line_error(self):
        with tempfile.TemporaryDirectory() as folder:
            path = write_spec(folder, "learning_rate: 1.0e-3\nactor_learning_rate: 2.0e-3\n")
            with self.assertRaisesRegex(UserInputError, "both 'learning_rate' and 'actor_learning_rate'") as caught:
                load_raw_spec(path)
            self.assertNotIn("\n", str(caught.exception))
            with self.assertRaisesRegex(UserInputError, "--set: both 'learning_rate' and 'actor_learning_rate'"):
                load_raw_spec(write_spec(folder, "seed: 1\n"), ["learning_rate=1e-3", "actor_learning_rate=2e-3"])


class ValidationTest(unittest.TestCase):
    def assertRejected(self, pattern: str, **fields):
        with self.assertRaisesRegex(UserInputError, pattern):
            ExperimentSpec(**fields)

    def test_out_of_range_values_name_the_field(self):
        self.assertRejected("'actor_learning_rate' = -0.001: must be a positive number", actor_learning_rate=-1e-3)
        self.assertRejected("'discount_factor'", discount_factor=1.5)
        self.assertRejected("'target_smoothing_coefficient'", target_smoothing_coefficient=0.0)
        self.assertRejected("'batch_size_in_ts' = 512: must be <= min_pool_size", batch_size_in_ts=512,
                            min_pool_size=256)
        self.assertRejected("'min_pool_size'", min_pool_size=2000, pool_capacity=1000, batch_size_in_ts=100)
        self.assertRejected("'min_pool_size' = 'soon': must be an integer >= 1 or 'auto'", min_pool_size="soon")
        self.assertRejected("'min_pool_size' = 0", min_pool_size=0)
        self.assertRejected("'batch_size_in_ts' = 512: must be <= pool_capacity", batch_size_in_ts=512,
                            pool_capacity=500)
        self.assertRejected("'alpha' = 'hot'", alpha="hot")
        self.assertRejected("'variant'.*one of v1, v2, crossq", variant="v3")
        self.assertRejected("'q_backup'.*double needs", q_backup="double")
        self.assertRejected("'hidden_activation'", hidden_activation="sigmoidz")
        self.assertRejected("'phi_nn_h_layer_topo'", phi_nn_h_layer_topo=())

    def test_critic_ensemble_fields_are_checked_against_each_other(self):
        self.assertRejected(r"'critic_subset' = 3: must be null or an integer in \[1, num_critics \(2\)\]",
                            critic_subset=3)
        self.assertRejected("'critic_subset' = 0", critic_subset=0, num_critics=5)
        self.assertRejected("'critic_subset' = 1: must be null with q_backup single", critic_subset=1,
                            q_backup="single")
        self.assertRejected("'num_critics' = 4: must be 2 with q_backup double", num_critics=4, variant="v2",
                            q_backup="double")
        self.assertRejected("'num_critics' = 1: must be an integer >= 2", num_critics=1)
        self.assertRejected(r"'critic_dropout' = 1.0: must be in \[0, 1\)", critic_dropout=1.0)
        self.assertRejected("'critic_dropout' = -0.1", critic_dropout=-0.1)
        self.assertEqual(ExperimentSpec(num_critics=10, critic_subset=2, critic_dropout=0.01).critic_subset, 2)

    def assertRefusedInOneLine(self, message: str, **fields):
        with self.assertRaises(UserInputError) as caught:
            ExperimentSpec(**fields)
        self.assertEqual(str(caught.exception), message)

    def test_crossq_refuses_target_network_fields_other_backups_and_redq_subsets(self):
        self.assertRefusedInOneLine("spec field 'target_smoothing_coefficient' = 0.01: must be left at its default "
                                    "(0.005) with variant crossq, which has no target networks",
                                    variant="crossq", target_smoothing_coefficient=0.01)
        self.assertRefusedInOneLine("spec field 'target_update_interval' = 2: must be left at its default (1) with "
                                    "variant crossq, which has no target networks",
                                    variant="crossq", target_update_interval=2)
        for backup in ("single", "double"):
            self.assertRefusedInOneLine(f"spec field 'q_backup' = '{backup}': must be clipped with variant crossq "
                                        "(its targets take the min over the critics)", variant="crossq",
                                        q_backup=backup)
        self.assertRefusedInOneLine("spec field 'critic_subset' = 2: must be null with variant crossq (its targets "
                                    "take the min over all the critics)", variant="crossq", num_critics=4,
                                    critic_subset=2)
        # what CrossQ does take: N critics, DroQ's dropout and layer norm (sbx's critic has both), n-step targets
        spec = ExperimentSpec(variant="crossq", num_critics=3, critic_dropout=0.01, critic_layer_norm=True, n_step=3,
                              target_smoothing_coefficient=0.005)
        self.assertEqual((spec.variant, spec.num_critics), ("crossq", 3))
        self.assertEqual(ExperimentSpec(target_update_interval=2, q_backup="single").variant, "v1")

    def test_actor_update_interval_and_adam_beta1_ranges(self):
        self.assertEqual((ExperimentSpec().actor_update_interval, ExperimentSpec().adam_beta1), (1, 0.9))
        self.assertEqual(ExperimentSpec(actor_update_interval=3, adam_beta1=0.0).adam_beta1, 0.0)
        self.assertRefusedInOneLine("spec field 'actor_update_interval' = 0: must be an integer >= 1",
                                    actor_update_interval=0)
        self.assertRefusedInOneLine("spec field 'adam_beta1' = 1.0: must be in [0, 1)", adam_beta1=1.0)
        self.assertRefusedInOneLine("spec field 'adam_beta1' = -0.5: must be in [0, 1)", adam_beta1=-0.5)
        with tempfile.TemporaryDirectory() as folder:  # sbx's names for them
            for other, field in (("policy_delay", "actor_update_interval"), ("b1", "adam_beta1")):
                with self.assertRaisesRegex(UserInputError, f"unknown spec field '{other}'.*'{field}'"):
                    load_raw_spec(write_spec(folder, f"{other}: 3\n"))

    def test_action_noise_beta_is_in_0_to_2(self):
        self.assertEqual(ExperimentSpec().action_noise_beta, 0.0)  # white noise, SAC's, by default
        self.assertEqual(ExperimentSpec(action_noise_beta=1).action_noise_beta, 1.0)
        for beta in (-0.5, 2.5, float("nan")):
            self.assertRejected(r"'action_noise_beta' = .*: must be in \[0, 2\] \(0 white, 1 pink, 2 red\)",
                                action_noise_beta=beta)

    def test_n_step_is_an_integer_of_at_least_1(self):
        self.assertEqual(ExperimentSpec().n_step, 1)
        self.assertEqual(ExperimentSpec(n_step=3).n_step, 3)
        with self.assertRaises(UserInputError) as caught:
            ExperimentSpec(n_step=0)
        self.assertEqual(str(caught.exception), "spec field 'n_step' = 0: must be an integer >= 1")
        self.assertRejected("'n_step': expected int, got 2.5", n_step=2.5)

    def test_wrong_types_name_the_field(self):
        self.assertRejected("'max_epoch': expected int, got 'ten'", max_epoch="ten")
        self.assertRejected("'seed': expected int, got True", seed=True)
        self.assertRejected("'psi_nn_h_layer_topo': expected a list of integers", psi_nn_h_layer_topo=[64.5])

    def test_unknown_key_suggests_the_closest_name(self):
        with tempfile.TemporaryDirectory() as folder:
            path = write_spec(folder, "learnig_rate: 0.001\n")
            with self.assertRaisesRegex(UserInputError, "unknown spec field 'learnig_rate'.*'actor_learning_rate'"):
                load_raw_spec(path)
            path = write_spec(folder, "update_horizon: 3\n")  # Dopamine's name
            with self.assertRaisesRegex(UserInputError, "unknown spec field 'update_horizon'.*'n_step'"):
                load_raw_spec(path)

    def test_missing_file_and_bad_yaml(self):
        with self.assertRaisesRegex(UserInputError, "does not exist"):
            load_raw_spec("no/such/spec.yaml")
        with tempfile.TemporaryDirectory() as folder:
            with self.assertRaisesRegex(UserInputError, "not valid YAML"):
                load_raw_spec(write_spec(folder, "alpha: [1, 2\n"))
            with self.assertRaisesRegex(UserInputError, "mapping"):
                load_raw_spec(write_spec(folder, "- 1\n- 2\n"))

    def test_bad_override(self):
        with tempfile.TemporaryDirectory() as folder:
            with self.assertRaisesRegex(UserInputError, "expected key=value"):
                load_raw_spec(write_spec(folder, "seed: 1\n"), ["alpha"])


class GridTest(unittest.TestCase):
    def test_lists_expand_to_every_combination(self):
        raw = {"name": "g", "reward_scaling": [1, 5], "phi_nn_h_layer_topo": [[64], [32, 32]], "seed": 3}
        specs = expand_grid(raw)
        self.assertEqual(len(specs), 4)
        self.assertEqual({(s.reward_scaling, s.phi_nn_h_layer_topo) for s in specs},
                         {(1.0, (64,)), (1.0, (32, 32)), (5.0, (64,)), (5.0, (32, 32))})
        self.assertIn("g-reward_scaling=1,phi_nn_h_layer_topo=32x32", {s.name for s in specs})

    def test_a_named_grid_point_is_tagged_by_its_name(self):
        raw = load_raw_spec(None, []) | {"name": "family", "seed": [1, 2], "reward_scaling": [1, 5], "grid": [
            {"name": "redq", "variant": "v2", "num_critics": 10, "critic_subset": 2}, {"variant": "v1"}]}
        specs = expand_grid(raw)
        self.assertEqual(sorted({s.name for s in specs}),
                         ["family-redq,reward_scaling=1", "family-redq,reward_scaling=5",
                          "family-variant=v1,reward_scaling=1", "family-variant=v1,reward_scaling=5"])
        self.assertEqual({(s.num_critics, s.critic_subset) for s in specs if "redq" in s.name}, {(10, 2)})

    def test_bad_grid_point_names_are_one_line(self):
        with tempfile.TemporaryDirectory() as folder:
            for text, message in (("grid:\n  - {name: a, variant: v1}\n  - {name: a, variant: v2}\n",
                                   "several points are named 'a'"),
                                  ("grid:\n  - {name: a/b, variant: v1}\n", "a point's name must be letters")):
                with self.assertRaisesRegex(UserInputError, message):
                    load_raw_spec(write_spec(folder, text))

    def test_a_plain_topology_is_not_a_grid(self):
        self.assertEqual(len(expand_grid({"name": "g", "phi_nn_h_layer_topo": [64, 64]})), 1)

    def test_each_grid_point_is_validated(self):
        with self.assertRaisesRegex(UserInputError, "actor_learning_rate"):
            expand_grid({"name": "g", "actor_learning_rate": [1e-3, -1.0]})

    def test_a_grid_value_is_a_list_or_for_a_topology_a_list_of_lists(self):
        self.assertTrue(is_grid_value("reward_scaling", [1, 5]))
        self.assertFalse(is_grid_value("reward_scaling", 5))
        self.assertTrue(is_grid_value("phi_nn_h_layer_topo", [[64], [32, 32]]))
        self.assertFalse(is_grid_value("phi_nn_h_layer_topo", [64, 64]))


if __name__ == "__main__":
    unittest.main()
