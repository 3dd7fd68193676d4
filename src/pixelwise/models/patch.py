"""Sliding-window patch classifier and its exact fully-convolutional equivalent.

The oldest deep segmentation recipe: classify the centre pixel of an ``N x N`` window,
slide the window over every pixel. Each window repeats almost all of its neighbour's work.
The fix is to see the classifier as a convolutional network: its fully-connected layers are
convolutions whose kernel covers the whole final feature map, and its stride-2 poolings
become stride-1 poolings followed by layers dilated by 2, 4, ... ("a trous" / the dilation
trick). The result computes every window's answer at once, and exactly the same numbers.

    window (N, N) --conv3--pool2--conv3--pool2--conv3--pool2--> (f, f, C) --fc--fc--> class
    image  (H, W) --conv3--pool2(s1)--conv3(d2)--pool2(s1,d2)--conv3(d4)--pool2(s1,d4)
                  --conv f x f (d8)--conv 1x1--> (H, W, classes)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

STAGES = 3  # conv3 + ReLU + maxpool2 blocks


def mirror_pad(x: torch.Tensor, top: int, bottom: int, left: int, right: int) -> torch.Tensor:
    """Mirror padding that also works when the pad exceeds the image (then edges repeat)."""
    h, w = x.shape[-2:]
    mode = "reflect" if max(top, bottom) < h and max(left, right) < w else "replicate"
    return F.pad(x, (left, right, top, bottom), mode=mode)


class PatchClassifier(nn.Module):
    """Classifies the centre pixel of a ``window`` x ``window`` patch.

    - :meth:`classify`: windows (B, C, window, window) -> logits (B, num_classes).
    - :meth:`sliding_window`: image (N, C, H, W) -> logits (N, K, H, W), one window per pixel
      (mirror-padded borders), evaluated in batches: the slow, literal method.
    - :meth:`forward`: the same logits computed fully convolutionally (fast, exactly equal).
    - :meth:`to_fcn`: a standalone ``nn.Sequential`` of the converted layers.
    """

    def __init__(
        self,
        in_channels: int = 3,
        num_classes: int = 2,
        window: int = 47,
        width: int = 32,
        hidden: int = 32,
    ) -> None:
        super().__init__()
        size = window
        layers: list[nn.Module] = []
        for i in range(STAGES):
            layers += [
                nn.Conv2d(in_channels if i == 0 else width, width, 3),
                nn.ReLU(),
                nn.MaxPool2d(2),
            ]
            size = (size - 2) // 2
        if size < 1:
            raise ValueError(
                f"window {window} is too small for {STAGES} conv+pool stages (need >= 22)"
            )
        self.window, self.final_size = window, size
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(width * size * size, hidden),
            nn.ReLU(),
            nn.Linear(hidden, num_classes),
        )

    def classify(self, windows: torch.Tensor) -> torch.Tensor:
        if windows.shape[-2:] != (self.window, self.window):
            raise ValueError(
                f"expected windows of {self.window} x {self.window}, got {tuple(windows.shape)}"
            )
        return self.classifier(self.features(windows))

    def _pad(self, x: torch.Tensor) -> torch.Tensor:
        half = self.window // 2
        return mirror_pad(x, half, self.window - 1 - half, half, self.window - 1 - half)

    def sliding_window(self, x: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        n, c, h, w = x.shape
        padded = self._pad(x)
        out = x.new_empty(n, self.classifier[-1].out_features, h, w)
        rows = max(1, batch_size // w)
        for img in range(n):
            # (H, W, C, window, window) view of the padded image; a batch of whole rows is copied at a time
            windows = (
                padded[img]
                .unfold(1, self.window, 1)
                .unfold(2, self.window, 1)
                .permute(1, 2, 0, 3, 4)
            )
            for top in range(0, h, rows):
                batch = windows[top : top + rows].reshape(-1, c, self.window, self.window)
                out[img, :, top : top + rows] = (
                    self.classify(batch).t().reshape(-1, min(rows, h - top), w)
                )
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        return self._dense(self._pad(x))[..., :h, :w]

    def _dense(self, x: torch.Tensor) -> torch.Tensor:
        dilation = 1
        for layer in self.features:
            if isinstance(layer, nn.Conv2d):
                x = F.conv2d(x, layer.weight, layer.bias, dilation=dilation)
            elif isinstance(layer, nn.MaxPool2d):
                x = F.max_pool2d(x, 2, stride=1, dilation=dilation)
                dilation *= 2
            else:
                x = layer(x)
        fc1, fc2 = self.classifier[1], self.classifier[3]
        kernel = fc1.weight.view(fc1.out_features, -1, self.final_size, self.final_size)
        x = F.relu(F.conv2d(x, kernel, fc1.bias, dilation=dilation))
        return F.conv2d(x, fc2.weight[:, :, None, None], fc2.bias)

    def to_fcn(self) -> nn.Sequential:
        """The converted network as ordinary layers (weights copied): input must already be
        padded by the window (see :meth:`forward`)."""
        layers: list[nn.Module] = []
        dilation = 1
        for layer in self.features:
            if isinstance(layer, nn.Conv2d):
                conv = nn.Conv2d(layer.in_channels, layer.out_channels, 3, dilation=dilation)
                conv.load_state_dict(layer.state_dict())
                layers.append(conv)
            elif isinstance(layer, nn.MaxPool2d):
                layers.append(nn.MaxPool2d(2, stride=1, dilation=dilation))
                dilation *= 2
            else:
                layers.append(nn.ReLU())
        fc1, fc2 = self.classifier[1], self.classifier[3]
        conv1 = nn.Conv2d(
            fc1.in_features // self.final_size**2,
            fc1.out_features,
            self.final_size,
            dilation=dilation,
        )
        conv1.weight.data.copy_(fc1.weight.view_as(conv1.weight))
        conv1.bias.data.copy_(fc1.bias)
        conv2 = nn.Conv2d(fc2.in_features, fc2.out_features, 1)
        conv2.weight.data.copy_(fc2.weight[:, :, None, None])
        conv2.bias.data.copy_(fc2.bias)
        return nn.Sequential(*layers, conv1, nn.ReLU(), conv2)
