"""Our own ResNet building blocks (He et al. 2016), as torchvision lays them out, without torchvision.

SRN cuts a ResNet in two: the *stem* (7x7 conv stride 2, BN, ReLU, 3x3 max-pool stride 2, layer1)
computes the preliminary features at 1/4 resolution once, and every regression module owns its own
copy of layers 2-4. :func:`make_layer` therefore takes the input channel count explicitly: a later
stage's layer2 sees the preliminary features concatenated with the re-parameterized maps.

``width`` scales every stage's channels (torchvision's ResNets are ``width=64``: layer1..4 have
64, 128, 256, 512 planes); a smaller width gives a narrower network for CPU training.
"""

from __future__ import annotations

from torch import Tensor, nn

__all__ = [
    "BasicBlock",
    "Bottleneck",
    "RESNET_SPECS",
    "make_layer",
    "make_stem",
    "init_weights",
]


def _conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=stride, padding=1, bias=False)


def _conv1x1(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with an identity (or 1x1 projection) shortcut. ResNet-18/34."""

    expansion = 1

    def __init__(self, in_channels: int, planes: int, stride: int = 1,
                 downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = _conv3x3(in_channels, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = _conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (carries the stride, "ResNet v1.5"), 1x1 expand by 4. ResNet-50/101."""

    expansion = 4

    def __init__(self, in_channels: int, planes: int, stride: int = 1,
                 downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = _conv1x1(in_channels, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = _conv3x3(planes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = _conv1x1(planes, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


# backbone name -> (block class, blocks in layer1..layer4). Explicit table, no registry.
RESNET_SPECS: dict[str, tuple[type[BasicBlock] | type[Bottleneck], tuple[int, int, int, int]]] = {
    "resnet18": (BasicBlock, (2, 2, 2, 2)),
    "resnet50": (Bottleneck, (3, 4, 6, 3)),
}


def make_layer(block: type[BasicBlock] | type[Bottleneck], in_channels: int, planes: int, blocks: int,
               stride: int = 1) -> nn.Sequential:
    """One ResNet stage: ``blocks`` blocks, the first with ``stride`` and a projection if needed.

    Output channels are ``planes * block.expansion``.
    """
    out_channels = planes * block.expansion
    downsample = None
    if stride != 1 or in_channels != out_channels:
        downsample = nn.Sequential(_conv1x1(in_channels, out_channels, stride), nn.BatchNorm2d(out_channels))
    layers = [block(in_channels, planes, stride, downsample)]
    layers += [block(out_channels, planes) for _ in range(1, blocks)]
    return nn.Sequential(*layers)


def make_stem(block: type[BasicBlock] | type[Bottleneck], blocks: int, width: int = 64,
              in_channels: int = 1) -> nn.Sequential:
    """ResNet stem plus layer1: (B, in_channels, S, S) -> (B, width * expansion, S / 4, S / 4)."""
    return nn.Sequential(
        nn.Conv2d(in_channels, width, kernel_size=7, stride=2, padding=3, bias=False),
        nn.BatchNorm2d(width),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
        make_layer(block, width, width, blocks, stride=1),
    )


def init_weights(module: nn.Module) -> None:
    """torchvision's ResNet initialisation: Kaiming normal (fan_out, ReLU) convs, BN to identity.

    Linear layers keep PyTorch's default initialisation, as in torchvision.
    """
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
