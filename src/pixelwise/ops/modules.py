"""Drop-in layers running on the from-scratch operations, and the backend switch.

Each scratch layer subclasses its ``torch.nn`` twin: same constructor, same parameters and
initialisation, same state-dict keys; only ``forward`` differs. A model built with
``backend="scratch"`` therefore loads a ``backend="torch"`` checkpoint and vice versa.
"""

from __future__ import annotations

from types import SimpleNamespace

import torch
from torch import nn

from pixelwise.ops.conv import conv2d, conv_transpose2d
from pixelwise.ops.pooling import max_pool2d_with_indices, max_unpool2d, unpool_output_size


class Conv2d(nn.Conv2d):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.groups != 1 or self.padding_mode != "zeros" or isinstance(self.padding, str):
            raise ValueError("scratch Conv2d supports groups=1, zero padding given as numbers")
        return conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation)


class ConvTranspose2d(nn.ConvTranspose2d):
    def forward(self, x: torch.Tensor, output_size: list[int] | None = None) -> torch.Tensor:
        if self.groups != 1:
            raise ValueError("scratch ConvTranspose2d supports groups=1")
        op = self._output_padding(
            x,
            output_size,
            list(self.stride),
            list(self.padding),
            list(self.kernel_size),
            2,
            list(self.dilation),
        )
        return conv_transpose2d(
            x, self.weight, self.bias, self.stride, self.padding, op, self.dilation
        )


class MaxPool2d(nn.MaxPool2d):
    def forward(self, x: torch.Tensor):
        if self.dilation not in (1, (1, 1)) or self.ceil_mode:
            raise ValueError("scratch MaxPool2d supports dilation=1 and ceil_mode=False")
        values, indices = max_pool2d_with_indices(x, self.kernel_size, self.stride, self.padding)
        return (values, indices) if self.return_indices else values


class MaxUnpool2d(nn.MaxUnpool2d):
    def forward(
        self, x: torch.Tensor, indices: torch.Tensor, output_size: list[int] | None = None
    ) -> torch.Tensor:
        if output_size is None:
            output_size = unpool_output_size(
                x.shape[-2:], self.kernel_size, self.stride, self.padding
            )
        return max_unpool2d(x, indices, tuple(output_size)[-2:])


BACKENDS = {
    "torch": SimpleNamespace(
        Conv2d=nn.Conv2d,
        ConvTranspose2d=nn.ConvTranspose2d,
        MaxPool2d=nn.MaxPool2d,
        MaxUnpool2d=nn.MaxUnpool2d,
    ),
    "scratch": SimpleNamespace(
        Conv2d=Conv2d, ConvTranspose2d=ConvTranspose2d, MaxPool2d=MaxPool2d, MaxUnpool2d=MaxUnpool2d
    ),
}


def layers(backend: str) -> SimpleNamespace:
    """The layer classes of a backend: ``"torch"`` (native kernels) or ``"scratch"`` (pixelwise.ops)."""
    try:
        return BACKENDS[backend]
    except KeyError:
        raise ValueError(
            f"unknown backend {backend!r}; choose one of: {', '.join(BACKENDS)}"
        ) from None
