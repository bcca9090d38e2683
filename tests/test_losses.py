import pytest
import torch

from style_core import losses


def test_gram_and_w2_zero_for_identical_features_and_positive_otherwise():
    torch.manual_seed(0)
    a = torch.rand(1, 8, 10, 12)
    b = torch.rand(1, 8, 10, 12) * 2 + 0.5
    assert losses.gram_loss(a, losses.gram(a)).item() < 1e-10
    assert losses.gram_loss(b, losses.gram(a)).item() > 1e-3
    assert abs(losses.w2_loss(a, losses.gaussian(a)).item()) < 1e-3
    assert losses.w2_loss(b, losses.gaussian(a)).item() > 1e-2


def test_w2_gradient_is_finite_with_degenerate_covariance():
    x = torch.zeros(1, 6, 5, 5, requires_grad=True)  # all-zero features: covariance is eps * I
    target = losses.gaussian(torch.rand(1, 6, 5, 5))
    loss = losses.w2_loss(x + 0.0, target)
    loss.backward()
    assert torch.isfinite(x.grad).all()


def test_masked_losses_zero_when_regions_match():
    torch.manual_seed(1)
    a = torch.rand(1, 4, 8, 8)
    mask = torch.zeros(8, 8)
    mask[:4] = 1
    other = a.clone()
    other[..., 4:, :] = torch.rand(1, 4, 4, 8) * 5  # differs only outside the mask
    assert losses.gram_loss(other, losses.gram(a, mask), mask).item() < 1e-10
    assert losses.gram_loss(other, losses.gram(a)).item() > 1e-4


def test_content_and_tv():
    a = torch.rand(1, 3, 6, 6)
    assert losses.content_loss(a, a).item() == 0
    assert losses.content_loss(a, a + 1).item() == 1.0
    assert losses.tv_loss(torch.ones(1, 3, 5, 5)).item() == 0
    assert losses.tv_loss(a).item() > 0


@pytest.mark.parametrize("n", [5, 40, 64])
def test_gram_match_equals_the_direct_loss_with_its_gradient_in_both_forms(n):
    from style_core.losses import gram_match, weighted_gram

    gen = torch.Generator().manual_seed(n)
    pixels = torch.rand(32, n, generator=gen, dtype=torch.float64, requires_grad=True)
    weight = torch.rand(n, generator=gen, dtype=torch.float64)
    target = weighted_gram(torch.rand(32, 50, generator=gen, dtype=torch.float64), torch.ones(50, dtype=torch.float64))
    direct = ((weighted_gram(pixels, weight) - target) ** 2).mean()
    (g_direct,) = torch.autograd.grad(direct, pixels)
    factor, match = gram_match(target, weight, n)
    assert match.small == (n < 32)
    fast = match(pixels * factor)
    (g_fast,) = torch.autograd.grad(fast, pixels)
    torch.testing.assert_close(fast, direct)
    torch.testing.assert_close(g_fast, g_direct)
    plain = ((weighted_gram(pixels, torch.ones(n, dtype=torch.float64)) - target) ** 2).mean()
    factor, match = gram_match(target, None, n)
    assert factor is None
    torch.testing.assert_close(match(pixels), plain)
