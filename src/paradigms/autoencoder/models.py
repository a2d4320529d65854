"""The decoders: a code back to an image's pixel logits (sigmoid gives pixels in [0, 1]).

The encoders are :mod:`paradigms.nets` networks whose head outputs the code (an autoencoder) or the
code's mean and log-variance (a VAE), so ``finetune --from`` reuses an encoder like any classifier's
backbone. A decoder mirrors the encoder's family:

    mlp:   code -> Linear -> act -> ... -> Linear -> (C, H, W)                       (hidden reversed)
    conv:  code -> Linear -> (64, H/4, W/4) -> ConvT(64->32, /2) -> ReLU -> ConvT(32->C, /2)   # H, W % 4 == 0
"""

from __future__ import annotations

import math

from torch import nn

from ..nets.mlp import ACTIVATIONS


class Decoder(nn.Module):
    def __init__(self, code: int, out_shape: tuple[int, int, int], kind: str = "mlp",
                 hidden: list[int] = (256, 256), activation: str = "relu"):
        super().__init__()
        c, h, w = out_shape
        self.out_shape = tuple(out_shape)
        if kind == "conv":
            if h % 4 or w % 4:
                raise ValueError(f"a conv decoder needs a height and width divisible by 4; the images are {h}x{w}")
            self.net = nn.Sequential(
                nn.Linear(code, 64 * (h // 4) * (w // 4)), nn.ReLU(),
                nn.Unflatten(1, (64, h // 4, w // 4)),                                # (N, 64, H/4, W/4)
                nn.ConvTranspose2d(64, 32, 4, stride=2, padding=1), nn.ReLU(),        # (N, 32, H/2, W/2)
                nn.ConvTranspose2d(32, c, 4, stride=2, padding=1))                    # (N, C, H, W) logits
        else:
            dims = [code, *reversed(list(hidden))]
            layers = [m for a, b in zip(dims[:-1], dims[1:]) for m in (nn.Linear(a, b), ACTIVATIONS[activation]())]
            self.net = nn.Sequential(*layers, nn.Linear(dims[-1], math.prod(out_shape)), nn.Unflatten(1, out_shape))

    def forward(self, z):
        return self.net(z)  # pixel logits, (N, C, H, W)
