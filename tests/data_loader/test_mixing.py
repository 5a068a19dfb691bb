import pytest
import torch

from data_loader.mixing import HalfCutMix, build_mixer
from utils.config import AugmentConfig, MixConfig


def batch():
    images = torch.stack([torch.full((3, 8, 10), float(i)) for i in range(6)])
    return images, torch.tensor([0, 1, 2, 3, 4, 5])


def test_half_cutmix_swaps_one_side_and_mixes_labels_by_area():
    torch.manual_seed(0)
    images, targets = batch()
    mixed, soft = HalfCutMix(prob=1.0, jitter=0.0)(images, targets)
    assert not torch.equal(mixed, images)
    for i in range(6):
        left, right = mixed[i, :, :, :5], mixed[i, :, :, 5:]
        assert len(left.unique()) == 1 and len(right.unique()) == 1  # exactly two halves
        values = {int(left.unique()), int(right.unique())}
        assert i in values  # one half is its own
        partner = (values - {i} or {i}).pop()
        expected = 0.5 * torch.nn.functional.one_hot(torch.tensor(i), 18) + \
            0.5 * torch.nn.functional.one_hot(torch.tensor(partner), 18)
        assert torch.allclose(soft[i], expected.float())


def test_half_cutmix_probability_zero_is_identity():
    images, targets = batch()
    mixed, soft = HalfCutMix(prob=0.0)(images, targets)
    assert torch.equal(mixed, images) and torch.equal(soft.argmax(1), targets)


def test_timm_mixup_and_cutmix_from_config():
    torch.manual_seed(0)
    images, targets = batch()
    assert build_mixer(AugmentConfig()) is None
    mixer = build_mixer(AugmentConfig(mixup=MixConfig(alpha=1.0, prob=1.0)))
    mixed, soft = mixer(images.clone(), targets)
    assert soft.shape == (6, 18) and torch.allclose(soft.sum(1), torch.ones(6))
    assert (soft.max(1).values < 1).all() and not torch.equal(mixed, images)
    half = build_mixer(AugmentConfig(cutmix=MixConfig(prob=1.0), cutmix_mode="half"))
    assert isinstance(half, HalfCutMix)


def test_training_with_half_cutmix_runs(make_trainer):
    trainer = make_trainer(**{"augment.cutmix.prob": 1.0, "augment.cutmix_mode": "half"})
    assert isinstance(trainer.mixer, HalfCutMix)
    assert torch.isfinite(torch.tensor(trainer.run_epoch()["train_loss"]))


@pytest.mark.parametrize("batch", [1, 2, 4, 5, 6])
def test_mixup_and_cutmix_take_any_batch_size(batch):
    from data_loader.mixing import build_mixer
    from utils.config import AugmentConfig, MixConfig

    mixer = build_mixer(AugmentConfig(mixup=MixConfig(prob=1.0), cutmix=MixConfig(prob=0.5)))
    images, targets = torch.randn(batch, 3, 8, 6), torch.arange(batch) % 18
    __import__("numpy").random.seed(batch)  # timm draws from numpy's global RNG (a tiny box can be empty)
    original = images.clone()  # timm mixes in place
    mixed, soft = mixer(images, targets)
    images = original
    assert mixed.shape == images.shape and soft.shape == (batch, 18)
    assert torch.allclose(soft.sum(1), torch.ones(batch))
    if batch % 2:
        assert torch.equal(mixed[-1], images[-1]) and soft[-1, targets[-1]] == 1
    else:  # an even batch is mixed whole, its last image too
        assert not torch.equal(mixed[-1], images[-1]) and soft[-1, targets[-1]] < 1


def test_odd_batches_train_with_mixup(make_trainer):
    trainer = make_trainer(**{"augment.mixup.prob": 1.0, "data.batch_size": 7})
    assert torch.isfinite(torch.tensor(trainer.run_epoch()["train_loss"]))


@pytest.mark.parametrize("seed", range(5))
def test_half_cutmix_labels_follow_the_area_each_image_keeps(seed):
    torch.manual_seed(seed)
    images = torch.stack([torch.full((1, 4, 20), float(i)) for i in range(4)])
    mixed, soft = HalfCutMix(prob=1.0, jitter=0.3)(images, torch.arange(4))
    for i in range(4):
        own = float((mixed[i] == i).float().mean())
        assert own == 1 or 0.2 - 1e-6 <= own <= 0.8 + 1e-6  # its own partner, or cut at the centre +- 30 %
        columns = (mixed[i, 0, 0] == i).tolist()
        assert columns in ([True] * columns.count(True) + [False] * columns.count(False),
                           [False] * columns.count(False) + [True] * columns.count(True))  # one side replaced
        partner = int(mixed[i][mixed[i] != i].unique()[0]) if own < 1 else i
        expected = torch.zeros(18)
        expected[i] += own
        expected[partner] += 1 - own
        assert torch.allclose(soft[i], expected, atol=1e-6)


def test_half_cutmix_draws_from_its_generator_when_given_one():
    images, targets = batch()
    first, second = HalfCutMix(prob=0.5, jitter=0.2), HalfCutMix(prob=0.5, jitter=0.2)
    first.generator, second.generator = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    torch.manual_seed(0)
    a = first(images, targets)
    torch.manual_seed(1)  # another global state changes nothing
    b = second(images, targets)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_the_mixer_hands_timm_the_configured_alphas_and_probabilities():
    mixer = build_mixer(AugmentConfig(mixup=MixConfig(alpha=0.4, prob=0.3), cutmix=MixConfig(alpha=1.5, prob=0.1)))
    timm_mixup = mixer.mixup
    assert (timm_mixup.mixup_alpha, timm_mixup.cutmix_alpha) == (0.4, 1.5)
    assert timm_mixup.mix_prob == pytest.approx(0.4) and timm_mixup.switch_prob == pytest.approx(0.25)
    assert timm_mixup.label_smoothing == 0.0 and timm_mixup.num_classes == 18
    only_cut = build_mixer(AugmentConfig(cutmix=MixConfig(alpha=1.0, prob=0.9))).mixup
    assert (only_cut.mixup_alpha, only_cut.cutmix_alpha, only_cut.switch_prob) == (0.0, 1.0, 1.0)
    assert only_cut.mix_prob == pytest.approx(0.9)
    capped = build_mixer(AugmentConfig(mixup=MixConfig(prob=0.8), cutmix=MixConfig(prob=0.7))).mixup
    assert capped.mix_prob == 1.0
    assert build_mixer(AugmentConfig(cutmix=MixConfig(prob=0.6), cutmix_mode="half"), num_classes=5).prob == 0.6
    assert build_mixer(AugmentConfig(mixup=MixConfig(prob=1.0)), num_classes=7).mixup.num_classes == 7


def cuts(mixer, draws=60, width=20):
    """Where `mixer` cut each of `draws` one-image-pair batches, and which side it replaced."""
    images = torch.stack([torch.zeros(1, 2, width), torch.ones(1, 2, width)])
    found = []
    for _ in range(draws):
        mixed, _ = mixer(images, torch.tensor([0, 1]))
        row = mixed[0, 0, 0]
        if torch.equal(row, images[0, 0, 0]):
            continue  # paired with itself
        taken = (row == 1).nonzero().flatten()
        found.append((int(taken.min()), int(taken.max()) + 1))
    return found


def test_half_cutmix_cuts_near_the_centre_on_both_sides_and_replaces_either_half():
    torch.manual_seed(7)
    mixer = HalfCutMix()  # the product's defaults: always, centre +- 10 % of the width
    found = cuts(mixer)
    lefts = [end for start, end in found if start == 0]
    rights = [start for start, end in found if end == 20]
    assert lefts and rights and len(lefts) + len(rights) == len(found)  # one whole side each time
    assert all(8 <= c <= 12 for c in lefts + rights)  # 20 * (0.5 +- 0.1)
    assert min(lefts + rights) < 10 < max(lefts + rights)  # the cut moves to both sides of the centre


def test_mixers_are_built_for_the_given_number_of_classes():
    half = build_mixer(AugmentConfig(cutmix=MixConfig(prob=1.0), cutmix_mode="half"), num_classes=5)
    assert half.num_classes == 5 and half(torch.randn(3, 1, 2, 4), torch.tensor([0, 4, 2]))[1].shape == (3, 5)
    timm_mix = build_mixer(AugmentConfig(mixup=MixConfig(prob=1.0)), num_classes=7)
    assert timm_mix(torch.randn(3, 1, 2, 4), torch.tensor([0, 6, 2]))[1].shape == (3, 7)  # odd: its own one-hot
    only_mixup = build_mixer(AugmentConfig(mixup=MixConfig(alpha=0.2, prob=0.3))).mixup
    assert (only_mixup.mixup_alpha, only_mixup.cutmix_alpha, only_mixup.switch_prob) == (0.2, 0.0, 0.0)
    assert only_mixup.mix_prob == pytest.approx(0.3)
