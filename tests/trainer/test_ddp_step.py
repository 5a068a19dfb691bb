"""The Trainer's DDP glue inside one process: a one-member gloo group stands in for the job (the two-process
runs are in test_ddp.py, `slow`), and a communication hook counts DDP's gradient all-reduces."""
from __future__ import annotations

import pytest
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from helpers import toy_trainer
from utils.dist_info import DistInfo


@pytest.fixture
def ddp_trainer(tmp_path):
    """A toy Trainer that sees itself as rank 0 of 2 (so it wraps DDP), over a one-member group."""
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'group'}", rank=0, world_size=1)
    try:
        def make(**cfg):
            trainer = toy_trainer(**cfg)
            trainer.dist = DistInfo(rank=0, world_size=2)
            trainer.net = trainer._wrap()
            return trainer
        yield make
    finally:
        dist.destroy_process_group()


def count_all_reduces(net: DistributedDataParallel) -> list[int]:
    calls: list[int] = []

    def hook(state, bucket):  # one member: the bucket is already the sum
        calls.append(bucket.index())
        future = torch.futures.Future()
        future.set_result(bucket.buffer())
        return future

    net.register_comm_hook(None, hook)
    return calls


def test_on_a_cpu_the_step_calls_ddp_over_the_model_without_device_ids(ddp_trainer):
    trainer = ddp_trainer()
    assert isinstance(trainer.net, DistributedDataParallel) and trainer.net.module is trainer.model
    assert trainer.net.device_ids is None  # a CPU module: DDP refuses device ids for it


def test_accumulated_batches_are_all_reduced_once_per_update(ddp_trainer):
    trainer = ddp_trainer(accumulate_steps=2)
    calls = count_all_reduces(trainer.net)
    batches = [(images, targets) for images, targets, _ in trainer.train_loader]
    trainer.train_step(*batches[0], 0, update=False)
    assert calls == [] and trainer.global_step == 0  # no_sync: forward and backward both inside it
    trainer.train_step(*batches[1], 1, update=True)
    assert calls == [0] and trainer.global_step == 1  # the toy model's gradients fit in one bucket
    plain = toy_trainer(accumulate_steps=2)
    plain.train_step(*batches[0], 0, update=False)
    plain.train_step(*batches[1], 1, update=True)
    for a, b in zip(trainer.model.parameters(), plain.model.parameters()):
        torch.testing.assert_close(a, b)  # the deferred sync adds up the same gradients


def _bad_batch_on_rank_one(rank: int, init: str, out: str) -> None:
    """One rank of a two-process gloo job: rank 1's first loss is NaN; both ranks then take a good step."""
    import json

    from helpers import toy_trainer

    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=2)
    try:
        calls = []

        def criterion(logits, targets):
            calls.append(1)
            loss = torch.nn.functional.cross_entropy(logits, targets)
            return loss * float("nan") if rank == 1 and len(calls) == 1 else loss

        trainer = toy_trainer(criterion=criterion, max_bad_steps=2)
        trainer.dist = DistInfo(rank=rank, world_size=2)
        trainer.net = trainer._wrap()
        batches = [(images, targets) for images, targets, _ in trainer.train_loader]
        skipped = trainer.train_step(*batches[0], 0) is None
        trainer.train_step(*batches[1], 1)
        weights = [p.detach().flatten().tolist() for p in trainer.model.parameters()]
        with open(f"{out}.{rank}", "w") as f:
            json.dump({"skipped": skipped, "bad_steps": trainer.bad_steps, "step": trainer.global_step,
                       "weights": weights}, f)
    finally:
        dist.destroy_process_group()


@pytest.mark.slow  # two processes
def test_a_bad_batch_on_one_rank_is_skipped_by_every_rank_without_waiting(tmp_path):
    """With trainer.max_bad_steps, a non-finite loss on rank 1 alone makes both ranks skip that step (had only
    rank 1 skipped, rank 0 would wait forever in the backward's all-reduce); the next step keeps them equal."""
    import json
    import time

    import torch.multiprocessing as mp

    from helpers import scaled

    out = str(tmp_path / "result")
    context = mp.spawn(_bad_batch_on_rank_one, args=(f"file://{tmp_path / 'group'}", out), nprocs=2, join=False)
    deadline = time.monotonic() + scaled(120)
    while not context.join(timeout=1):
        if time.monotonic() > deadline:
            for process in context.processes:
                process.kill()
            pytest.fail("a rank waited for the other: the bad step was not agreed on")
    results = [json.loads((tmp_path / f"result.{rank}").read_text()) for rank in (0, 1)]
    assert [r["skipped"] for r in results] == [True, True] and [r["bad_steps"] for r in results] == [1, 1]
    assert [r["step"] for r in results] == [1, 1] and results[0]["weights"] == results[1]["weights"]
