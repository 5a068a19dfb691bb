import copy

import torch

from trainer.freeze import FreezeSchedule
from utils.config import FreezeConfig


def params(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def changed(before, module):
    return {k for k, v in module.state_dict().items() if not torch.equal(before[k], v)}


def test_freeze_trains_exactly_the_head_then_unfreezes_on_schedule(make_trainer):
    trainer = make_trainer(**{"trainer.freeze.epochs": 1, "trainer.epochs": 2})
    model = trainer.model
    assert not any(p.requires_grad for p in model.backbone.parameters())
    assert all(p.requires_grad for p in model.head.parameters())

    backbone0, head0 = params(model.backbone), params(model.head)
    trainer.fit()
    # fit ran 2 epochs: frozen for epoch 1, unfrozen after it
    assert trainer.freeze.unfrozen_at == 1 and not trainer.freeze.frozen
    assert all(p.requires_grad for p in model.parameters())
    assert changed(backbone0, model.backbone)  # unfrozen backbone trained in epoch 2
    assert changed(head0, model.head)


def test_frozen_epoch_leaves_backbone_and_bn_stats_untouched(make_trainer):
    trainer = make_trainer(**{"trainer.freeze.epochs": 5, "trainer.epochs": 1})
    backbone0, head0 = params(trainer.model.backbone), params(trainer.model.head)
    trainer.fit()
    assert trainer.freeze.frozen
    assert not changed(backbone0, trainer.model.backbone)  # weights and running stats
    assert changed(head0, trainer.model.head)


def test_unfreeze_by_patience():
    model = torch.nn.Module()
    model.backbone, model.head = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    schedule = FreezeSchedule(FreezeConfig(patience=2))
    schedule.apply(model)
    assert not schedule.step(epochs_done=3, bad_epochs=1, model=model)
    assert not model.backbone.weight.requires_grad
    assert schedule.step(epochs_done=4, bad_epochs=2, model=model)
    assert model.backbone.weight.requires_grad and schedule.unfrozen_at == 4
    restored = FreezeSchedule(FreezeConfig(patience=2))
    restored.load_state_dict(copy.deepcopy(schedule.state_dict()))
    assert not restored.frozen


def test_the_schedule_resumes_with_when_it_unfroze():
    schedule = FreezeSchedule(FreezeConfig(epochs=2))
    restored = FreezeSchedule(FreezeConfig(epochs=2))
    restored.load_state_dict({"frozen": False, "unfrozen_at": 2})
    assert (restored.frozen, restored.unfrozen_at) == (False, 2)
    restored.load_state_dict({"frozen": False, "melted_at": 3})  # written before the rename
    assert (restored.frozen, restored.unfrozen_at) == (False, 3)
    melted = FreezeSchedule(FreezeConfig(epochs=2))
    model = torch.nn.Module()
    model.backbone, model.head = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    melted.step(epochs_done=2, bad_epochs=0, model=model)
    restored.load_state_dict(melted.state_dict())  # a round trip keeps when it unfroze
    assert (restored.frozen, restored.unfrozen_at) == (False, 2)
    restored = FreezeSchedule(FreezeConfig(epochs=2))
    restored.load_state_dict(schedule.state_dict())  # still frozen: stays frozen and unfreezes on time
    assert (restored.frozen, restored.unfrozen_at) == (True, None)
    assert not restored.step(epochs_done=1, bad_epochs=0, model=model) and restored.step(2, 0, model)
