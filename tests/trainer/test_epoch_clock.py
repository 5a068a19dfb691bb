"""trainer.epoch_clock: where an epoch's time goes, and the one line that says when the loader is the bottleneck."""
import logging
import time

import pytest

from trainer import epoch_clock
from trainer.epoch_clock import EpochClock, LoaderClock, LoaderNote, loader_bound_note


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_loader_clock_counts_the_wait_for_batches_and_not_the_work_between_them(monkeypatch):
    fake = FakeTime()
    monkeypatch.setattr(epoch_clock.time, "perf_counter", fake)

    def slow_loader():
        for i in range(4):
            fake.now += 2.0  # fetching a batch
            yield i
        fake.now += 1.0  # finding out there is none left

    batches = LoaderClock(slow_loader())
    seen = []
    for batch in batches:
        seen.append(batch)
        fake.now += 5.0  # the training step
    assert seen == [0, 1, 2, 3] and batches.wait == pytest.approx(4 * 2.0 + 1.0)


def test_sections_add_up_and_shares_leave_the_loader_wait_out_of_the_total(monkeypatch):
    fake = FakeTime()
    monkeypatch.setattr(epoch_clock.time, "perf_counter", fake)
    clock = EpochClock()
    with clock.section("train"):
        fake.now += 6.0
    with clock.section("val"):
        fake.now += 2.0
    with clock.section("val"):
        fake.now += 2.0
    clock.add("loader_wait", 3.0)
    assert clock.seconds == {"train": 6.0, "val": 4.0, "loader_wait": 3.0}
    assert clock.shares() == pytest.approx({"train": 0.6, "val": 0.4, "loader_wait": 0.3})


def test_shares_of_an_epoch_shorter_than_a_second_and_of_an_untimed_one():
    clock = EpochClock()
    assert clock.shares() == {}  # nothing timed: no shares, not a division by zero
    clock.add("loader_wait", 0.2)
    assert clock.shares() == {}  # waiting alone is no step time to share
    clock.add("step", 0.3)
    clock.add("eval", 0.1)
    assert clock.shares() == pytest.approx({"loader_wait": 0.5, "step": 0.75, "eval": 0.25})


@pytest.mark.parametrize(("cache", "workers", "cpus", "knob"), [
    ("none", 8, 8, "set data.cache: memory (or disk) so each photo is decoded once"),
    ("memory", 0, 8, "raise data.num_workers (now 0; this machine has 8 CPU cores)"),
    ("memory", 6, 8, "raise data.num_workers (now 6; this machine has 8 CPU cores)"),  # one core for training
    ("memory", 7, 8, "lighten augment.train (its heaviest steps), or lower augment.image_size"),
    ("disk", 1, 2, "lighten augment.train (its heaviest steps), or lower augment.image_size"),
])
def test_the_note_appears_above_a_tenth_of_the_training_time_with_the_knob_to_turn(cache, workers, cpus, knob):
    assert loader_bound_note(1.0, 10.0, num_workers=workers, cache=cache, cpus=cpus) is None
    note = loader_bound_note(1.2, 10.0, num_workers=workers, cache=cache, cpus=cpus)
    assert "12%" in note and "1.2 of 10.0 s" in note and note.endswith(f": {knob}") and "\n" not in note
    assert loader_bound_note(0.0, 0.0, num_workers=workers, cache=cache) is None


@pytest.mark.parametrize(("cores", "knob"), [(8, "raise data.num_workers (now 5; this machine has 8 CPU cores)"),
                                             (None, "lighten augment.train")])  # cores unknown: counted as one
def test_the_knob_counts_this_machines_cores_when_not_told(monkeypatch, cores, knob):
    monkeypatch.setattr(epoch_clock.os, "cpu_count", lambda: cores)
    assert epoch_clock.loader_knob(5, "memory").startswith(knob)


class SlowLoader:
    """A loader that takes `delay` seconds to hand over each batch of `loader`."""

    def __init__(self, loader, delay: float) -> None:
        self.loader, self.delay, self.dataset, self.sampler = loader, delay, loader.dataset, loader.sampler

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        for batch in self.loader:
            time.sleep(self.delay)
            yield batch


def test_a_slow_loader_is_named_after_the_first_epoch_only_and_every_section_is_timed(tmp_path, caplog):
    from helpers import toy_trainer

    trainer = toy_trainer(tmp_path, scores=[0.1, 0.2, 0.3], epochs=3)
    trainer.train_loader = SlowLoader(trainer.train_loader, delay=0.05)
    trainer.callbacks.append(LoaderNote(num_workers=0, cache="memory"))
    with caplog.at_level(logging.WARNING, logger="trainer.epoch_clock"):
        first = trainer.run_epoch()
        second = trainer.run_epoch()
    assert 0.25 <= first["loader_wait"] <= first["train_time"] <= first["epoch_time"]
    assert second["loader_wait"] >= 0.25
    notes = [m for m in caplog.messages if m.startswith("the data loader kept the training step waiting")]
    assert len(notes) == 1 and "data.num_workers (now 0" in notes[0]
    assert set(trainer.clock.seconds) == {"train", "loader_wait", "val", "log", "checkpoint"}
    assert trainer.clock.seconds["loader_wait"] == second["loader_wait"]  # the clock is the last epoch's


def test_a_fast_loader_gets_no_note(tmp_path, caplog):
    from helpers import toy_trainer

    trainer = toy_trainer(tmp_path, scores=[0.1], epochs=1)
    step = trainer.train_step

    def slow_step(*args, **kwargs):  # a step of real size: the toy's microseconds would make any loader "slow"
        time.sleep(0.05)
        return step(*args, **kwargs)
    trainer.train_step = slow_step
    trainer.callbacks.append(LoaderNote(num_workers=0, cache="memory"))
    with caplog.at_level(logging.WARNING, logger="trainer.epoch_clock"):
        metrics = trainer.run_epoch()
    assert metrics["loader_wait"] < 0.1 * metrics["train_time"] and not caplog.messages


def test_the_note_reads_the_epochs_figures_and_names_the_cache_when_there_is_none(caplog):
    with caplog.at_level(logging.WARNING, logger="trainer.epoch_clock"):
        for metrics in ({}, {"train_time": 5.0}, {"loader_wait": 0.5}):  # a figure missing: nothing to say
            LoaderNote(num_workers=2, cache="none")(None, 1, metrics, None, False)
        assert caplog.messages == []
        LoaderNote(num_workers=2, cache="none")(None, 1, {"loader_wait": 1.0, "train_time": 4.0}, None, False)
    assert caplog.messages == ["the data loader kept the training step waiting 25% of this epoch's training time "
                               "(1.0 of 4.0 s): set data.cache: memory (or disk) so each photo is decoded once"]


def test_a_section_timed_twice_adds_up():
    clock = EpochClock()
    clock.add("val", 1.5)
    clock.add("val", 2.0)
    assert clock.seconds == {"val": 3.5}
