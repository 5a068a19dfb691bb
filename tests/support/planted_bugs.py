"""Plant one realistic bug at a time, run the fast test meant to catch it, restore the file, check the test
passes again: `.venv/bin/python tests/support/planted_bugs.py` (a few minutes; the tree must be clean)."""
# ruff: noqa: E501 - the planted code is quoted as it stands
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
BUGS = [  # (what, file, code, the bug, the test that must catch it)
    ('early stop one epoch late',
     'trainer/trainer.py',
     'self.monitor.bad_epochs >= patience',
     'self.monitor.bad_epochs > patience',
     'tests/trainer/test_epochs.py::test_early_stopping_stops_at_the_exact_epoch'),
    ('patience not reset on unfreeze',
     'trainer/trainer.py',
     '            self.monitor.reset_patience()\n',
     '            pass\n',
     'tests/trainer/test_epochs.py::test_unfreezing_restarts_the_patience_count'),
    ('last partial group never applied',
     'trainer/trainer.py',
     'update = (step + 1) % accum == 0 or step + 1 == n_batches',
     'update = (step + 1) % accum == 0',
     'tests/trainer/test_epochs.py::test_accumulation_groups_batches_into_updates_inside_the_epoch'),
    ('last group weighed as a full group',
     'trainer/trainer.py',
     'group_size=group_size)\n',
     'group_size=None)\n',
     'tests/trainer/test_epochs.py::test_accumulated_epoch_equals_big_batches'),
    ('EMA updated with the previous step number',
     'trainer/trainer.py',
     '        self.global_step += 1\n        if self.ema is not None:\n            self.ema.update(self.model, step=self.global_step)',
     '        if self.ema is not None:\n            self.ema.update(self.model, step=self.global_step)\n        self.global_step += 1',
     'tests/trainer/test_epochs.py::test_ema_matches_timm_model_ema_v3_on_its_first_updates'),
    ('last.pth written before best.pth',
     'trainer/trainer.py',
     '        if improved:  # best before last: a crash in between leaves last.pth one epoch behind, never ahead\n            save_checkpoint(for_inference(state), self.run_dir.best)\n        save_checkpoint(state, self.run_dir.last)',
     '        save_checkpoint(state, self.run_dir.last)\n        if improved:\n            save_checkpoint(for_inference(state), self.run_dir.best)',
     'tests/trainer/test_epochs.py::test_best_checkpoint_is_written_before_last'),
    ('optimizer state not restored',
     'trainer/trainer.py',
     '        self.optimizer.load_state_dict(state["optimizer"])\n',
     '',
     'tests/trainer/test_epochs.py::test_optimizer_state_restores_into_a_fresh_optimizer'),
    ('min monitor treated as max',
     'trainer/monitor.py',
     'return value > self.best if self.mode == "max" else value < self.best',
     'return value > self.best',
     'tests/trainer/test_epochs.py::test_the_monitor_direction_picks_the_best_epoch'),
    ('fold 0 built before seeding',
     'experiments/folds.py',
     'parts = seeded_parts(fold_config(config, 0))',
     'parts = build_parts(fold_config(config, 0))\n    from trainer.build import build_parts  # noqa',
     'tests/experiments/test_folds.py::test_every_fold_starts_from_the_weights_its_seed_gives'),
    ('resume accepts a new split',
     'trainer/resume.py',
     '    if refused:\n',
     '    if False:\n',
     'tests/trainer/test_resume.py::test_resume_refuses_overrides_that_change_what_the_run_is'),
    ('face crop not resized (cache skew)',
     'data_loader/face_crop.py',
     'return resize_to(self.cut(path), self.out_hw)',
     'return self.cut(path)',
     'tests/data_loader/test_datasets.py::test_validation_and_prediction_see_the_same_pixels'),
    ('output may overwrite a checkpoint',
     'utils/outputs.py',
     '                if same_file(path, Path(read)):',
     '                if False:',
     'tests/cli/test_faults.py::test_an_output_that_would_destroy_an_input_is_refused_before_anything_is_written'),
    ('stray fold voted',
     'predict/predictor.py',
     'if fold.best.is_file() and (n_folds is None or k < n_folds):',
     'if fold.best.is_file():',
     'tests/cli/test_faults.py::test_stray_folders_in_folds_are_not_voted'),
    ('scorer accepts unknown ImageIDs',
     'tools/score.py',
     '    if len(unknown):\n',
     '    if False:\n',
     'tests/tools/test_score_rules.py'),
    ('run table: K-fold parent from summary.json',
     'tools/runs.py',
     'kfold_row(run) if run.folds_summary.is_file() or run.folds_dir.is_dir() else single_row(run)',
     'single_row(run)',
     'tests/tools/test_runs.py::test_a_kfold_run_is_one_row_with_its_folds_below_it'),
    ('stratum key collides gender with age',
     'data_loader/split.py',
     'people["gender"] * NUM_AGE + people["age_group"]',
     'people["gender"] + people["age_group"]',
     'tests/data_loader/test_split.py::test_person_strata_written_out'),
    ('fold deal restarts with every stratum',
     'data_loader/split.py',
     'offset += len(ids)',
     'offset = len(ids)',
     'tests/data_loader/test_split.py::test_small_strata_continue_the_deal_so_folds_stay_even'),
    ('every fold reuses fold 0\'s parts',
     'experiments/folds.py',
     'parts=parts if fold == 0 else None)',
     'parts=parts)',
     'tests/experiments/test_folds.py::test_all_folds_trains_each_fold_in_its_folder_then_pools'),
    ('OOF pred from the label column',
     'experiments/folds.py',
     '"pred": result.probs.argmax(axis=1)})',
     '"pred": result.y_true})',
     'tests/experiments/test_folds.py::test_oof_frame_and_scores_against_sklearn'),
    ('plateau forgets min_lr',
     'trainer/plateau.py',
     'patience=patience, min_lr=min_lr)',
     'patience=patience)',
     'tests/trainer/test_schedule.py::test_plateau_never_decays_below_min_lr'),
    ('seed trials queued again by every worker',
     'experiments/search.py',
     'skip_if_exists=True)',
     'skip_if_exists=False)',
     'tests/experiments/test_search.py::test_seed_trials_run_first_and_only_once'),
    ('soup keeps every epoch',
     'trainer/soup.py',
     'kept = self.better_or_equal(trial, score)',
     'kept = True',
     'tests/trainer/test_soup.py::test_an_epoch_joins_the_soup_only_if_validation_does_not_get_worse'),
    ('soup keeps one candidate too many',
     'trainer/soup.py',
     'if len(self.scores) >= self.cfg.top_k:',
     'if len(self.scores) > self.cfg.top_k:',
     'tests/trainer/test_soup.py::test_only_the_top_k_epochs_are_kept_and_as_copies'),
    ('pooling on the point gain, not its interval',
     'predict/pooled_prediction.py',
     'shown = report is not None and report["delta_low"] > 0',
     'shown = report is not None and report["delta"] > 0',
     'tests/predict/test_person_groups.py::test_pooling_stands_down_unless_validation_shows_a_gain_beyond_noise'),
    ('paired difference of the wrong sign',
     'utils/bootstrap.py',
     'return (delta, *interval(f1(counts @ conf_b) - f1(counts @ conf_a)))',
     'return (delta, *interval(f1(counts @ conf_a) - f1(counts @ conf_b)))',
     'tests/predict/test_person_groups.py::test_the_paired_difference_matches_scikit_learn_per_resample'),
    ('inference ignores the stand-down',
     'inference.py',
     '    if not use_pooling(report, args.group_people):',
     '    if False:',
     'tests/predict/test_person_groups.py::test_inference_writes_the_plain_prediction_when_pooling_stands_down'),
    ('loader wait not counted',
     'trainer/epoch_clock.py',
     '                self.wait += time.perf_counter() - start',
     '                pass',
     'tests/trainer/test_epoch_clock.py::test_the_loader_clock_counts_the_wait_for_batches_and_not_the_work_between_them'),
    ('loader note at twice its threshold',
     'trainer/epoch_clock.py',
     'wait / train_seconds <= threshold',
     'wait / train_seconds < threshold * 2',
     'tests/trainer/test_epoch_clock.py::test_the_note_appears_above_a_tenth_of_the_training_time_with_the_knob_to_turn'),
    ('CPU validation and prediction in bf16',
     'utils/device.py',
     '    if not training:',
     '    if False:',
     'tests/utils/test_device.py::test_the_cpu_trains_in_bf16_only_where_it_is_native_and_always_predicts_in_fp32'),
    ('an age written 45.0 refused',
     'data_loader/people.py',
     'r"([0-9]+)(?:\\.0*)?"',
     'r"([0-9]+)"',
     'tests/data_loader/test_people.py::test_a_train_csv_from_another_system_reads_as_the_same_people'),
    ('padded CSV cells kept',
     'data_loader/people.py',
     '    df = df.apply(lambda column: column.str.strip())',
     '',
     'tests/data_loader/test_people.py::test_a_train_csv_from_another_system_reads_as_the_same_people'),
    ('bare loop labels misaligned',
     'tools/bare_loop.py',
     'cross_entropy(model(x), labels[batch])',
     'cross_entropy(model(x), labels[batch.flip(0)])',
     'tests/tools/test_bare_loop.py::test_the_loop_learns_the_labels_of_its_own_photos'),
    ('pooling ceiling measured on the found groups',
     'tools/pooling_check.py',
     'for name, grouping in (("found", groups), ("ceiling", true_groups)):',
     'for name, grouping in (("found", true_groups), ("ceiling", true_groups)):',
     'tests/tools/test_pooling_check.py::test_pooling_over_the_true_people_fixes_the_odd_photo_and_singletons_change_nothing'),
]


def run(test: str) -> int:
    cmd = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", test]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True).returncode


def main(only: str = "") -> int:
    """Every planted bug, or those whose name contains `only`."""
    caught, bugs = 0, [b for b in BUGS if only in b[0]]
    for name, file, old, new, test in bugs:
        path = ROOT / file
        source = path.read_text()
        if old not in source:
            print(f"SKIP {name}: the code it changes is gone")
            continue
        path.write_text(source.replace(old, new, 1))
        try:
            with_bug = run(test)
        finally:
            path.write_text(source)
        fixed = run(test)
        ok = with_bug != 0 and fixed == 0
        caught += ok
        print(f"{'OK ' if ok else 'BAD'} {name}: with the bug rc={with_bug}, without rc={fixed}  "
              f"[{test.split('::')[-1]}]", flush=True)
    print(f"{caught}/{len(bugs)} planted bugs caught by their test")
    return 0 if caught == len(bugs) else 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:2]))
