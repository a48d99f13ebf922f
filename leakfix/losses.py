"""Loss functions on the logits at leak positions only: small, pure, testable on tensors.

`logits` is [N, V] (one row per leak position); `bad` / `good` are [N, K] id tensors padded with
-1 (a position may have several bad variants and several good candidates).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass
class LossParts:
    loss: torch.Tensor
    ul: torch.Tensor  # unlikelihood term, mean over positions
    rf: torch.Tensor  # reinforcement term, mean over positions
    p_bad: torch.Tensor  # mean probability of the bad set (detached)
    p_good: torch.Tensor  # mean probability of the good set (detached)


def set_prob(logprobs: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """Probability mass of each row's id set: [N, V] logprobs, [N, K] ids (-1 = padding) → [N]."""
    mask = ids >= 0
    lp = logprobs.gather(-1, ids.clamp(min=0))
    return (lp.exp() * mask).sum(-1)


def set_logprob(logprobs: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """log of the set's probability mass, computed stably with logsumexp."""
    mask = ids >= 0
    lp = logprobs.gather(-1, ids.clamp(min=0)).masked_fill(~mask, float("-inf"))
    return torch.logsumexp(lp, dim=-1)


def unlikelihood(logprobs: torch.Tensor, bad: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """−log(1 − p(bad set)) per position, with log1p for stability as p → 1."""
    p = set_prob(logprobs, bad).clamp(max=1 - eps)
    return -torch.log1p(-p)


def reinforcement(logprobs: torch.Tensor, good: torch.Tensor) -> torch.Tensor:
    """−log p(good set) per position."""
    return -set_logprob(logprobs, good)


def seed_ul_loss(logits: torch.Tensor, bad: torch.Tensor, good: torch.Tensor, alpha_ul: float = 1.0, alpha_rf: float = 0.1) -> LossParts:
    """The seed's objective α_ul·(−log(1−p_bad)) + α_rf·(−log p_good), averaged over positions.

    The seed reinforces one corrected token; passing a single good id per row reproduces it,
    several good ids reinforce the set.
    """
    logprobs = F.log_softmax(logits.float(), dim=-1)
    ul = unlikelihood(logprobs, bad).mean()
    rf = reinforcement(logprobs, good).mean()
    return LossParts(
        alpha_ul * ul + alpha_rf * rf, ul, rf,
        set_prob(logprobs, bad).mean().detach(), set_prob(logprobs, good).mean().detach(),
    )


def kl_to_base(logits: torch.Tensor, base_logits: torch.Tensor) -> torch.Tensor:
    """Mean KL(base ‖ tuned) over rows: how far the tuned distribution drifted."""
    lp = F.log_softmax(logits.float(), dim=-1)
    base_lp = F.log_softmax(base_logits.float(), dim=-1)
    return (base_lp.exp() * (base_lp - lp)).sum(-1).mean()
