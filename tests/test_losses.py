import math

import torch

from leakfix.losses import kl_to_base, reinforcement, seed_ul_loss, set_prob, unlikelihood


def _logits(probs):
    return torch.log(torch.tensor(probs, dtype=torch.float32))


def test_seed_loss_matches_the_formula():
    logits = _logits([[0.5, 0.3, 0.2], [0.1, 0.1, 0.8]])
    bad = torch.tensor([[0, -1], [2, -1]])
    good = torch.tensor([[1], [0]])
    parts = seed_ul_loss(logits, bad, good, alpha_ul=1.0, alpha_rf=0.1)
    ul = (-math.log(1 - 0.5) - math.log(1 - 0.8)) / 2
    rf = (-math.log(0.3) - math.log(0.1)) / 2
    assert abs(parts.ul.item() - ul) < 1e-5 and abs(parts.rf.item() - rf) < 1e-5
    assert abs(parts.loss.item() - (ul + 0.1 * rf)) < 1e-5
    assert abs(parts.p_bad.item() - 0.65) < 1e-5 and abs(parts.p_good.item() - 0.2) < 1e-5


def test_multiple_bad_variants_are_one_set():
    lp = torch.log_softmax(_logits([[0.4, 0.3, 0.2, 0.1]]), -1)
    assert abs(set_prob(lp, torch.tensor([[0, 2, -1]])).item() - 0.6) < 1e-6
    assert abs(unlikelihood(lp, torch.tensor([[0, 2]])).item() + math.log(0.4)) < 1e-5
    assert abs(reinforcement(lp, torch.tensor([[1, 3]])).item() + math.log(0.4)) < 1e-5


def test_unlikelihood_is_finite_as_p_bad_tends_to_one():
    logits = torch.tensor([[50.0, 0.0, 0.0]], requires_grad=True)
    parts = seed_ul_loss(logits, torch.tensor([[0]]), torch.tensor([[1]]))
    parts.loss.backward()
    assert torch.isfinite(parts.loss) and torch.isfinite(logits.grad).all()


def test_gradient_step_lowers_p_bad_and_raises_p_good():
    logits = torch.randn(3, 10, requires_grad=True)
    bad, good = torch.tensor([[1, 2], [3, -1], [4, 5]]), torch.tensor([[0], [6], [7]])
    before = seed_ul_loss(logits, bad, good, 1.0, 0.5)
    before.loss.backward()
    with torch.no_grad():
        after = seed_ul_loss(logits - 0.5 * logits.grad, bad, good, 1.0, 0.5)
    assert after.p_bad < before.p_bad and after.p_good > before.p_good


def test_kl_to_base():
    a = torch.randn(4, 7)
    assert abs(kl_to_base(a, a).item()) < 1e-6
    assert kl_to_base(a + torch.randn(4, 7), a).item() > 0
