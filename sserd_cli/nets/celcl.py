"""CELCL: contrastive emotion latent code learning module (SSERD section 3.1, eq. 2-4).

Tokens are the W+ rows: ``w_s`` and ``w_r`` are [B, n_latent, D].

1. Projections (eq. 2), each with its own weight and bias::

       Q = w_s Wq + bq,   K = w_r Wk + bk,   V = w_r Wv + bv

2. Multi-head cross-attention over the n_latent tokens (Vaswani et al.):
   ``softmax(Q_h K_h^T / sqrt(D/heads)) V_h`` per head, heads concatenated and
   projected (``attention.out``).
3. FFN layers (eq. 3): ``ffn_layers`` linear layers with GELU between them.
4. Two transformer encoder layers T^2 (eq. 4; self-attention + FFN, residuals,
   post-LayerNorm as in the original transformer).
5. Output layer: a linear map to the emotion code w_e. With ``zero_init`` (default)
   its weight and bias start at zero, so an untrained CELCL outputs w_e = 0 and
   ``edit`` is the identity edit; training moves it away from zero from the first
   step (its gradient does not vanish).

``edit(w_s, w_r, strength) = w_s + strength * w_e``. A reference batch of one is
broadcast over the source batch (one reference code for every frame of a video).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F


@dataclass
class CELCLConfig:
    n_latent: int = 14
    style_dim: int = 512
    heads: int = 8
    ffn_layers: int = 2
    transformer_layers: int = 2
    ffn_dim: int = 1024  # hidden width of the FFN and transformer feed-forward blocks
    dropout: float = 0.0
    zero_init: bool = True  # zero the output layer: untrained module = identity edit


class MultiHeadCrossAttention(nn.Module):
    """Queries from the source code, keys and values from the reference code (eq. 2)."""

    def __init__(self, dim: int, heads: int, dropout: float = 0.0):
        super().__init__()
        if dim % heads:
            raise ValueError(f"style_dim {dim} must be divisible by heads {heads}")
        self.heads, self.head_dim = heads, dim // heads
        self.q = nn.Linear(dim, dim)  # Wq, bq
        self.k = nn.Linear(dim, dim)  # Wk, bk
        self.v = nn.Linear(dim, dim)  # Wv, bv
        self.out = nn.Linear(dim, dim)
        self.dropout = dropout

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        return x.view(b, n, self.heads, self.head_dim).transpose(1, 2)  # [B, h, n, d]

    def forward(self, w_s: torch.Tensor, w_r: torch.Tensor) -> torch.Tensor:
        q, k, v = self._split(self.q(w_s)), self._split(self.k(w_r)), self._split(self.v(w_r))
        attn = (q @ k.transpose(-2, -1)) / math.sqrt(self.head_dim)
        attn = F.dropout(attn.softmax(dim=-1), self.dropout, self.training)
        out = (attn @ v).transpose(1, 2).flatten(2)  # [B, n, D]
        return self.out(out)


class FeedForward(nn.Sequential):
    """``n_layers`` linear layers (D -> hidden -> ... -> D) with GELU between them."""

    def __init__(self, dim: int, hidden: int, n_layers: int):
        if n_layers < 1:
            raise ValueError("ffn_layers must be >= 1")
        widths = [dim] + [hidden] * (n_layers - 1) + [dim]
        layers: list[nn.Module] = []
        for i in range(n_layers):
            layers.append(nn.Linear(widths[i], widths[i + 1]))
            if i < n_layers - 1:
                layers.append(nn.GELU())
        super().__init__(*layers)


class CELCL(nn.Module):
    """Predict the emotion code w_e [B, n_latent, D] from source and reference W+ codes."""

    def __init__(self, config: CELCLConfig | None = None):
        super().__init__()
        self.config = c = config or CELCLConfig()
        self.attention = MultiHeadCrossAttention(c.style_dim, c.heads, c.dropout)
        self.ffn = FeedForward(c.style_dim, c.ffn_dim, c.ffn_layers)
        self.transformer = nn.ModuleList(
            nn.TransformerEncoderLayer(c.style_dim, c.heads, c.ffn_dim, c.dropout, batch_first=True)
            for _ in range(c.transformer_layers)
        )
        self.out = nn.Linear(c.style_dim, c.style_dim)
        if c.zero_init:
            nn.init.zeros_(self.out.weight)
            nn.init.zeros_(self.out.bias)

    def forward(self, w_s: torch.Tensor, w_r: torch.Tensor) -> torch.Tensor:
        """Emotion code w_e, same shape as ``w_s``; ``w_r`` may have batch 1 (broadcast)."""
        if w_r.shape[0] == 1 and w_s.shape[0] > 1:
            w_r = w_r.expand(w_s.shape[0], -1, -1)
        c = self.config
        if w_s.ndim != 3 or w_s.shape[1:] != (c.n_latent, c.style_dim) or w_r.shape != w_s.shape:
            raise ValueError(f"w_s and w_r must both be [B, {c.n_latent}, {c.style_dim}], got {list(w_s.shape)} and {list(w_r.shape)}")
        x = self.ffn(self.attention(w_s, w_r))  # eq. 3
        for layer in self.transformer:  # eq. 4
            x = layer(x)
        return self.out(x)

    def edit(self, w_s: torch.Tensor, w_r: torch.Tensor, strength: float = 1.0) -> torch.Tensor:
        """Edited code ``w_s + strength * w_e`` to render with the generator."""
        return w_s + strength * self(w_s, w_r)
