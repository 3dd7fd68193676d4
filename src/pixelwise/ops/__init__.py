"""The lecture's operations from scratch, verified against PyTorch (see docs/ops.md).

``pixelwise.ops.reference`` holds NumPy versions of the same math.
"""

from pixelwise.ops.conv import conv2d, conv_transpose2d
from pixelwise.ops.matrix import conv_matrix
from pixelwise.ops.modules import BACKENDS, Conv2d, ConvTranspose2d, MaxPool2d, MaxUnpool2d, layers
from pixelwise.ops.pooling import max_pool2d_with_indices, max_unpool2d, unpool_output_size

__all__ = [
    "BACKENDS",
    "Conv2d",
    "ConvTranspose2d",
    "MaxPool2d",
    "MaxUnpool2d",
    "conv2d",
    "conv_matrix",
    "conv_transpose2d",
    "layers",
    "max_pool2d_with_indices",
    "max_unpool2d",
    "unpool_output_size",
]
