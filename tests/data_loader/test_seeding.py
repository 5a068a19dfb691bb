"""data_loader.seeding: a sample's augmentation is a function of (seed, epoch, index) alone."""
import albumentations as A
import numpy as np

from data_loader.seeding import sample_seed, seed_pipeline


def test_a_sample_seed_is_numpys_seed_sequence_of_seed_epoch_and_index():
    assert sample_seed(1, 2, 3) == int(np.random.SeedSequence([1, 2, 3]).generate_state(1)[0])
    seeds = {sample_seed(s, e, i) for s in range(3) for e in range(3) for i in range(3)}
    assert len(seeds) == 27  # every part of the triple matters
    assert all(0 <= s < 2**32 for s in seeds)


def pipeline() -> A.Compose:
    return A.Compose([A.HorizontalFlip(p=0.5), A.OneOf([A.RandomBrightnessContrast(p=1), A.Blur(p=1)], p=0.9),
                      A.CoarseDropout(p=0.5)])


def test_every_step_nested_or_not_draws_from_the_one_seeded_pair():
    transform = pipeline()
    seed_pipeline(transform, 5)
    steps = [transform, *transform.transforms, *transform.transforms[1].transforms]
    assert len({id(s.random_generator) for s in steps}) == 1 and len({id(s.py_random) for s in steps}) == 1
    assert steps[0].random_generator.integers(1 << 30) == np.random.default_rng(5).integers(1 << 30)


def test_the_same_seed_gives_the_same_augmentation_and_another_seed_another():
    image = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)

    def augmented(seed: int) -> list[np.ndarray]:
        transform = pipeline()
        seed_pipeline(transform, seed)
        return [transform(image=image)["image"] for _ in range(6)]

    first = augmented(11)
    assert all(np.array_equal(a, b) for a, b in zip(first, augmented(11)))
    assert not all(np.array_equal(a, b) for a, b in zip(first, augmented(12)))
