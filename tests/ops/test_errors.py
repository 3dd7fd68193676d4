"""Bad input raises ValueError naming the shapes."""

import pytest
import torch

from pixelwise.ops import (
    conv2d,
    conv_matrix,
    conv_transpose2d,
    layers,
    max_pool2d_with_indices,
    max_unpool2d,
)


def test_unpool_indices_must_match_input():
    x = torch.randn(1, 2, 3, 3)
    with pytest.raises(
        ValueError, match=r"indices shape \(1, 2, 2, 2\) does not match input shape \(1, 2, 3, 3\)"
    ):
        max_unpool2d(x, torch.zeros(1, 2, 2, 2, dtype=torch.long), (6, 6))
    with pytest.raises(
        ValueError, match=r"indices range \[0, 40\] does not fit output size \(6, 6\)"
    ):
        max_unpool2d(
            x,
            torch.full((1, 2, 3, 3), 40, dtype=torch.long).index_fill_(3, torch.tensor([0]), 0),
            (6, 6),
        )
    with pytest.raises(ValueError, match="indices must be int64"):
        max_unpool2d(x, torch.zeros(1, 2, 3, 3, dtype=torch.int32), (6, 6))
    with pytest.raises(ValueError, match=r"output_size must give a positive \(H, W\)"):
        max_unpool2d(x, torch.zeros(1, 2, 3, 3, dtype=torch.long), (0, 6))


def test_wrong_dtypes_and_ranks():
    with pytest.raises(ValueError, match="expected a floating-point tensor, got torch.int64"):
        max_pool2d_with_indices(torch.zeros(1, 1, 4, 4, dtype=torch.long), 2)
    with pytest.raises(ValueError, match=r"expected a 4D tensor, got shape \(4, 4\)"):
        conv2d(torch.zeros(4, 4), torch.zeros(1, 1, 3, 3))
    with pytest.raises(
        ValueError, match="input dtype torch.float64 differs from weight dtype torch.float32"
    ):
        conv2d(torch.zeros(1, 1, 4, 4, dtype=torch.float64), torch.zeros(1, 1, 3, 3))


def test_impossible_sizes():
    with pytest.raises(
        ValueError,
        match=r"input \(1, 1, 2, 2\) with padding \(0, 0\) is smaller than the dilated kernel",
    ):
        conv2d(torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 3, 3))
    with pytest.raises(
        ValueError, match=r"input of shape \(1, 1, 1, 1\) is smaller than the kernel \(2, 2\)"
    ):
        max_pool2d_with_indices(torch.zeros(1, 1, 1, 1), 2)
    with pytest.raises(ValueError, match=r"impossible output size \(-1, -1\)"):
        conv_transpose2d(torch.zeros(1, 1, 1, 1), torch.zeros(1, 1, 1, 1), padding=1)
    with pytest.raises(ValueError, match=r"kernel \(5,\) .* does not fit input \(3,\)"):
        conv_matrix([1, 2, 3, 4, 5], (3,))


def test_output_padding_must_be_below_stride():
    with pytest.raises(
        ValueError, match=r"output_padding \(2, 2\) must be smaller than stride \(2, 2\)"
    ):
        conv_transpose2d(
            torch.zeros(1, 1, 3, 3), torch.zeros(1, 1, 3, 3), stride=2, output_padding=2
        )


def test_channel_mismatch_and_unknown_backend():
    with pytest.raises(
        ValueError,
        match=r"weight \(4, 3, 3, 3\) expects 3 input channels, input \(1, 2, 5, 5\) has 2",
    ):
        conv2d(torch.zeros(1, 2, 5, 5), torch.zeros(4, 3, 3, 3))
    with pytest.raises(
        ValueError,
        match=r"weight \(3, 4, 3, 3\) expects 3 input channels, input \(1, 2, 5, 5\) has 2",
    ):
        conv_transpose2d(torch.zeros(1, 2, 5, 5), torch.zeros(3, 4, 3, 3))
    with pytest.raises(ValueError, match="unknown backend 'cuda'; choose one of: torch, scratch"):
        layers("cuda")
