"""The lecture's worked examples, with their exact numbers."""

import numpy as np
import torch
import torch.nn.functional as F

from pixelwise.ops import conv_matrix, conv_transpose2d, max_pool2d_with_indices, max_unpool2d
from pixelwise.ops import reference as ref

LECTURE_INPUT = [[1, 2, 6, 4], [3, 5, 1, 4], [3, 3, 4, 6], [7, 5, 1, 8]]


def test_max_pool_and_unpool_4x4():
    x = torch.tensor(LECTURE_INPUT, dtype=torch.float32).view(1, 1, 4, 4)
    values, indices = max_pool2d_with_indices(x, 2)
    assert values[0, 0].tolist() == [[5, 6], [7, 8]]
    # positions (1,1), (0,2), (3,0), (3,3) as flat indices row*4+col
    assert indices[0, 0].tolist() == [[5, 2], [12, 15]]
    out = max_unpool2d(torch.tensor([[1.0, 2.0], [3.0, 4.0]]).view(1, 1, 2, 2), indices, (4, 4))
    assert out[0, 0].tolist() == [[0, 0, 2, 0], [0, 1, 0, 0], [0, 0, 0, 0], [3, 0, 0, 4]]
    v_np, i_np = ref.max_pool2d_with_indices(x.numpy(), 2)
    assert v_np[0, 0].tolist() == [[5, 6], [7, 8]] and i_np[0, 0].tolist() == [[5, 2], [12, 15]]


XYZ = np.array(["x", "y", "z"], dtype=object)


def test_1d_conv_matrix_stride_1_padding_1():
    # the slide's matrix acts on the padded input (0, a, b, c, d, 0)
    X = conv_matrix(XYZ, (4,), stride=1, padding=1, padded_input=True)
    assert X.tolist() == [
        ["x", "y", "z", 0, 0, 0],
        [0, "x", "y", "z", 0, 0],
        [0, 0, "x", "y", "z", 0],
        [0, 0, 0, "x", "y", "z"],
    ]
    assert X.T.tolist() == [
        ["x", 0, 0, 0],
        ["y", "x", 0, 0],
        ["z", "y", "x", 0],
        [0, "z", "y", "x"],
        [0, 0, "z", "y"],
        [0, 0, 0, "z"],
    ]


def test_1d_conv_matrix_stride_2_padding_1():
    X = conv_matrix(XYZ, (4,), stride=2, padding=1, padded_input=True)
    assert X.tolist() == [["x", "y", "z", 0, 0, 0], [0, 0, "x", "y", "z", 0]]
    assert X.T.tolist() == [["x", 0], ["y", 0], ["z", "x"], [0, "y"], [0, "z"], [0, 0]]


def test_1d_matrices_numerically_equal_conv_and_transpose():
    k = torch.tensor([2.0, 3.0, 5.0], dtype=torch.float64)
    a = torch.tensor([1.0, -2.0, 4.0, 7.0], dtype=torch.float64)
    for stride in (1, 2):
        X = torch.from_numpy(conv_matrix(k.numpy(), (4,), stride=stride, padding=1))
        y = F.conv1d(a.view(1, 1, 4), k.view(1, 1, 3), stride=stride, padding=1).flatten()
        torch.testing.assert_close(X @ a, y)
        back = F.conv_transpose1d(
            y.view(1, 1, -1),
            k.view(1, 1, 3),
            stride=stride,
            padding=1,
            output_padding=(4 + 2 - 3) % stride,
        ).flatten()
        torch.testing.assert_close(X.T @ y, back)


def test_3x3_stride_2_transposed_conv_2x2_to_4x4():
    y = torch.tensor([[1.0, 2.0], [3.0, 4.0]]).view(1, 1, 2, 2)
    w = torch.ones(1, 1, 3, 3)
    out = conv_transpose2d(y, w, stride=2, padding=1, output_padding=1)
    # each input stamps the 3x3 kernel, scaled by its value, at stride 2; overlaps sum
    assert out[0, 0].tolist() == [[1, 3, 2, 2], [4, 10, 6, 6], [3, 7, 4, 4], [3, 7, 4, 4]]
    torch.testing.assert_close(out, F.conv_transpose2d(y, w, stride=2, padding=1, output_padding=1))
    # and it is the transpose of the 4x4 -> 2x2 stride-2 convolution's matrix
    X = torch.from_numpy(conv_matrix(w[0, 0].numpy(), (4, 4), stride=2, padding=1))
    assert X.shape == (4, 16)
    torch.testing.assert_close((X.T @ y.flatten()).view(4, 4), out[0, 0])
