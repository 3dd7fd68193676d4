"""The training and validation datasets of image/mask pairs (:class:`pixelwise.data.layouts.Item`,
found by :mod:`pixelwise.data.layouts`): reading, encoding, augmentation and normalisation.

Samples are ``(image float32 (C, H, W), target int64 (H, W))`` with 255 marking pixels to
ignore (and the U-Net weight map as a third tensor when asked for).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from pixelwise.constants import IGNORE_INDEX, one_line, unusable
from pixelwise.data.appearance import random_appearance
from pixelwise.data.encoding import MaskEncoding, Normalization, full_scale, map_range
from pixelwise.data.layouts import Item
from pixelwise.data.slide import annotated_image, item_image
from pixelwise.data.transforms import (
    Augmentation,
    composite,
    elastic_deform,
    pad_context,
    random_box_crop,
    random_crop,
    random_flip_rotate,
    random_resized_crop,
    random_rotate,
    rescaled,
    resize_mask,
    resize_pair,
)
from pixelwise.data.weight_map import unet_weight_map

CACHE_SHARE = 0.25  # of the machine's memory, at most, for a dataset's decoded pairs


def memory_bytes() -> int:
    """The machine's physical memory."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def compute_normalization(images, percentiles=None) -> Normalization:
    """Per-channel mean and std of (H, W, C) images (any iterable), scaled to [0, 1] (with
    ``percentiles``, each by its own: :class:`Normalization`); one image at a time, merged by
    Chan et al.'s pairwise update (a float64 copy of the whole set took 10 GB for 1,030
    portraits of 512 x 384)."""
    n, mean, m2, scale = 0, None, None, None
    unit = Normalization(percentiles=percentiles)
    for im in images:
        scale = max(scale or 0.0, full_scale(im.dtype))
        if percentiles is not None:
            im = unit.unit(im)
        x = im.reshape(-1, im.shape[-1]).astype(np.float64)
        k, mu = len(x), x.mean(axis=0)
        sq = ((x - mu) ** 2).sum(axis=0)
        if mean is None:
            n, mean, m2 = k, mu, sq
            continue
        delta = mu - mean
        mean = mean + delta * k / (n + k)
        m2 = m2 + sq + delta**2 * n * k / (n + k)
        n += k
    unit_scale = 1.0 if percentiles is not None else scale  # mapped to units already
    std = np.maximum(np.sqrt(m2 / n) / unit_scale, 1e-3)
    return Normalization((mean / unit_scale).tolist(), std.tolist(), scale, percentiles)


def to_tensor(
    image: np.ndarray, norm: Normalization | None, bounds: tuple[float, float] | None = None
) -> torch.Tensor:
    """(H, W, C) raw image -> normalised float32 (C, H, W) tensor (``norm`` None: the image is
    normalised already; ``bounds``: of the whole image that ``image`` is a crop or tile of, for
    a model normalised by percentiles, :meth:`Normalization.bounds`)."""
    x = norm.apply(image, bounds) if norm is not None else image.astype(np.float32, copy=False)
    return torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))


class SegmentationDataset(Dataset):
    """Labelled items as ``(image float32 (C,H,W), target int64 (H,W))``.

    With ``crop``, ``elastic`` and ``augment``, each sample is a random crop, elastically
    deformed, with flips/rotations (``flips``: see :func:`~pixelwise.data.transforms.random_flip_rotate`), whose
    randomness depends only on ``(seed, epoch, index)``; call :meth:`set_epoch` each epoch.
    An ``index`` past the end draws item ``index % len(self)`` with its own randomness (see
    :func:`pixelwise.train.epoch_indices`).
    ``scale`` resizes every pair once, when first loaded (image antialiased bilinear, mask
    nearest), pair ``i`` also by ``item_scales[i]`` when given (``train --at-pixel-size``).
    Decoded pairs are cached in memory (targets as uint8 up to 255 classes), up to
    ``CACHE_SHARE`` of it; pairs beyond are read again at each use.

    ``weight_map=(w0, sigma)`` adds U-Net's border weight map (:func:`~pixelwise.losses.unet_weight_map`)
    as a third element, float32 (H, W), cropped, deformed and flipped with the target. Its
    cells are the instance labels for instance masks, else the 4-connected components of
    every class but class 0 (ISBI 2012: the cells between membranes).
    """

    def __init__(
        self,
        items: list[Item],
        num_classes: int,
        encoding: MaskEncoding,
        norm: Normalization,
        crop: int | None = None,
        augment: bool = False,
        seed: int = 0,
        channels: int | None = None,
        elastic: bool = False,
        scale: float = 1.0,
        weight_map: tuple[float, float] | None = None,
        flips: str = "all",
        augmentation: Augmentation = Augmentation(),
        input_range: tuple[float, float] | None = None,
        channel: int | None = None,
        item_scales: list[float] | None = None,
    ) -> None:
        self.items, self.num_classes, self.encoding, self.norm = items, num_classes, encoding, norm
        self.item_scales = item_scales  # each pair's own factor on top of ``scale``
        self.input_range = input_range  # raw values seen as full range (evaluate --input-range)
        self.channel = channel  # each image's channel read alone (train/evaluate --channel)
        self.weight_map = weight_map
        self._weights: dict[int, np.ndarray] = {}
        self.crop, self.augment, self.seed, self.epoch = crop, augment, seed, 0
        self.elastic, self.scale, self.flips, self.augmentation = (
            elastic,
            scale,
            flips,
            augmentation,
        )
        self.context = (
            0  # mirrored border added around each image before cropping (valid-convolution models)
        )
        self.channels = channels
        self._cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._cached_bytes = 0
        self._bounds: dict[tuple, tuple[float, float]] = {}
        self.kinds: dict[str, int] = {}  # images per intensity_kind (training: build_datasets)

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self):
        """Each pair once. (``__getitem__`` wraps indices past ``len`` into more random draws for
        the epoch sampler, so Python's fallback iteration by index would never stop.)"""
        return (self[i] for i in range(len(self)))

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def set_channels(self, channels: int) -> None:
        """Convert images (cached ones included) to ``channels`` channels."""
        self.channels = channels
        self._cache = {
            i: (match_channels(im, channels, self.items[i].image), t)
            for i, (im, t) in self._cache.items()
        }
        self._cached_bytes = sum(im.nbytes + t.nbytes for im, t in self._cache.values())

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """The raw image (H, W, C) and encoded target (H, W) int64 of pair ``index``."""
        image, target = self._load(index)
        return image, target.astype(np.int64)

    def _load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`load`, the target as the cache holds it (uint8 for up to 255 classes: 255
        is the ignore index). Pairs are cached until they fill ``CACHE_SHARE`` of the memory;
        later ones are read again at each use."""
        if index in self._cache:
            return self._cache[index]
        item = self.items[index]
        image = item_image(item, self.channel)
        target = self.encoding.apply(
            item.read_mask(self.encoding.instances is not None), self.num_classes, item.mask
        )
        if (drawn_on := annotated_image(item, target.shape, self.channel, image)) is None:
            raise ValueError(size_mismatch(item, target.shape, image.shape[:2]))
        image = drawn_on if self.input_range is None else map_range(drawn_on, *self.input_range)
        if self.channels is not None:
            image = match_channels(image, self.channels, item.image)
        factor = self.scale * (1.0 if self.item_scales is None else self.item_scales[index])
        if factor != 1.0:
            image, target = resize_pair(image, target, factor)
        if self.num_classes <= IGNORE_INDEX:
            target = target.astype(np.uint8)
        if self._cached_bytes + image.nbytes + target.nbytes <= CACHE_SHARE * memory_bytes():
            self._cache[index] = (image, target)
            self._cached_bytes += image.nbytes + target.nbytes
        return image, target

    def value_range(self, index: int, image: np.ndarray) -> tuple[float, float]:
        """The raw values of pair ``index``'s whole image ``image`` that the model sees as 0
        and 1: its percentiles (:meth:`bounds`), or its dtype's full scale."""
        return self.bounds(index, image) or (0.0, full_scale(image.dtype))

    def bounds(self, index: int, image: np.ndarray) -> tuple[float, float] | None:
        """:meth:`Normalization.bounds` of pair ``index``'s whole image ``image`` (cached), which
        its crops are normalised by; None for a model normalised by bit depth."""
        if self.norm is None or self.norm.percentiles is None:
            return None
        key = (index, tuple(self.norm.percentiles))
        if key not in self._bounds:
            self._bounds[key] = self.norm.bounds(image)
        return self._bounds[key]

    def weights(self, index: int) -> np.ndarray:
        """The border weight map of pair ``index`` at the dataset's resolution (cached)."""
        if index not in self._weights:
            from scipy import ndimage

            target = self.load(index)[1]
            if self.encoding.instances is not None:
                item = self.items[index]
                cells = resize_mask(item.read_mask(True), target.shape).astype(np.int64)
            else:
                cells = ndimage.label((target != 0) & (target != IGNORE_INDEX))[0]
            w0, sigma = self.weight_map
            weights = unet_weight_map(cells, w0, sigma)
            if self._cached_bytes + weights.nbytes > CACHE_SHARE * memory_bytes():
                return weights
            self._weights[index] = weights
            self._cached_bytes += weights.nbytes
        return self._weights[index]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, ...]:
        item = index % len(self.items)  # index >= len: another random draw of the same item
        image, target = self._load(item)
        bounds = self.bounds(item, image)
        if self.weight_map is not None:  # weights travel as a second label plane
            target = np.stack([target.astype(np.float32), self.weights(item)], axis=-1)
        if self.context:
            image, target = pad_context(image, target, self.context)
        extra = self.augmentation
        if self.crop or self.augment or self.elastic or extra.active:
            rng = np.random.default_rng([self.seed, self.epoch, index])
            if extra.composite and len(self.items) > 1 and rng.random() < extra.composite:
                other = (item + 1 + int(rng.integers(len(self.items) - 1))) % len(self.items)
                plate, plate_target = self._load(other)
                plate = rescaled(
                    plate,
                    self.value_range(other, plate),
                    self.value_range(item, image),
                    image.dtype,
                )
                image = composite(image, target, plate, plate_target)
            if self.crop and extra.box:
                image, target = random_box_crop(image, target, self.crop, rng, extra.box)
            elif self.crop and extra.zoom:
                image, target = random_resized_crop(image, target, self.crop, rng, extra.zoom)
            elif self.crop:
                image, target = random_crop(image, target, self.crop, rng)
            if extra.rotate:
                image, target = random_rotate(image, target, rng, extra.rotate)
            if self.elastic:
                image, target = elastic_deform(image, target, rng)
            if self.augment:
                image, target = random_flip_rotate(image, target, rng, self.flips)
            if bounds is not None and extra.appearance != "none":
                # the changes act on the image as the model sees it (StarDist's order): an
                # inverted or gamma-changed dark image, mapped by its original percentiles
                # afterwards, would reach values far outside 0..1
                image, bounds = self.norm.unit(image, bounds), (0.0, 1.0)
            image = random_appearance(image, rng, extra.appearance)
        if self.weight_map is not None:
            weights = torch.from_numpy(np.ascontiguousarray(target[..., 1]))
            labels = torch.from_numpy(np.ascontiguousarray(target[..., 0])).long()
            return to_tensor(image, self.norm, bounds), labels, weights
        labels = torch.from_numpy(np.ascontiguousarray(target)).long()
        return to_tensor(image, self.norm, bounds), labels


def size_mismatch(item, mask: tuple[int, int], image: tuple[int, int]) -> str:
    """The message for a pair whose mask (``mask``: height, width) is not its image's size."""
    return (
        f"{item.mask}: mask is {mask[1]} x {mask[0]} but image {item.image.name} is "
        f"{image[1]} x {image[0]} (width x height)"
    )


def each_image(dataset: SegmentationDataset, what: str):
    """Each pair's image, in order, every pair read (and checked) once; then a ValueError
    naming all the pairs that could not be (:func:`unusable`), if any."""
    failures = []
    for i in range(len(dataset)):
        try:
            image = dataset.load(i)[0]
        except ValueError as exc:
            failures.append(one_line(exc))
            continue
        yield image
    if failures:
        raise unusable(failures, what)


def pad_collate(batch: list[tuple[torch.Tensor, ...]]) -> tuple[torch.Tensor, ...]:
    """Stack samples of different sizes (whole images, ``crop=0``): each padded at the bottom and
    right by what its image lacks of the batch's largest, images with 0 (the mean after
    normalisation), targets with the ignore index and weight maps with 0, so that padding is
    never learnt from. Samples of one size stack as they are."""
    height = max(image.shape[-2] for image, *_ in batch)
    width = max(image.shape[-1] for image, *_ in batch)
    fills = (0.0, IGNORE_INDEX, 0.0)
    return tuple(
        torch.stack(
            [
                torch.nn.functional.pad(
                    part, (0, width - image.shape[-1], 0, height - image.shape[-2]), value=fill
                )
                for part, (image, *_) in zip(parts, batch)
            ]
        )
        for parts, fill in zip(zip(*batch), fills)
    )


def match_channels(image: np.ndarray, channels: int, path: Path | str = "<image>") -> np.ndarray:
    """Convert grey <-> colour so that an image has the channel count a model expects."""
    have = image.shape[-1]
    if have == channels:
        return image
    if have == 1 and channels == 3:
        return np.repeat(image, 3, axis=-1)
    if have == 3 and channels == 1:
        grey = image.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
        return grey.round().astype(image.dtype)[..., None]
    raise ValueError(f"{path}: image has {have} channels, model expects {channels}")
