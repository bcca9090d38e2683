import pytest
import torch

from style_core import losses
from style_core.stats import sqrtm_psd, weighted_mean_cov


def gram_loss(features, target, mask=None):
    return ((losses.gram(features, mask) - target) ** 2).mean()


def w2_loss(features, target, mask=None):
    return losses.w2_distance(*losses.mean_cov(features, mask), target)


def gaussian(features, mask=None):
    return losses.Gaussian.fit(*losses.mean_cov(features, mask))


def test_gram_and_w2_zero_for_identical_features_and_positive_otherwise():
    torch.manual_seed(0)
    a = torch.rand(1, 8, 10, 12)
    b = torch.rand(1, 8, 10, 12) * 2 + 0.5
    assert gram_loss(a, losses.gram(a)).item() < 1e-10
    assert gram_loss(b, losses.gram(a)).item() > 1e-3
    assert abs(w2_loss(a, gaussian(a)).item()) < 1e-3
    assert w2_loss(b, gaussian(a)).item() > 1e-2


def test_w2_gradient_is_finite_with_degenerate_covariance():
    x = torch.zeros(1, 6, 5, 5, requires_grad=True)  # all-zero features: covariance is eps * I
    target = gaussian(torch.rand(1, 6, 5, 5))
    loss = w2_loss(x + 0.0, target)
    loss.backward()
    assert torch.isfinite(x.grad).all()


def test_the_shared_helpers_against_their_definitions():
    gen = torch.Generator().manual_seed(3)
    pixels = torch.rand(5, 40, generator=gen, dtype=torch.float64)
    weight = torch.rand(40, generator=gen, dtype=torch.float64)
    mean, cov = weighted_mean_cov(pixels, weight, eps=0.0)
    p = weight / weight.sum()
    torch.testing.assert_close(mean, pixels @ p)
    torch.testing.assert_close(cov, (pixels - mean[:, None]) @ torch.diag(p) @ (pixels - mean[:, None]).T)
    plain_mean, plain_cov = weighted_mean_cov(pixels, None, eps=0.0)
    torch.testing.assert_close(plain_mean, pixels.mean(1))
    torch.testing.assert_close(plain_cov, torch.cov(pixels, correction=0))
    root = sqrtm_psd(cov)
    torch.testing.assert_close(root @ root, cov)
    spd = cov + torch.eye(5, dtype=cov.dtype)
    inverse_root = sqrtm_psd(spd, inverse=True)
    torch.testing.assert_close(inverse_root @ spd @ inverse_root, torch.eye(5, dtype=cov.dtype))


def test_masked_losses_zero_when_regions_match():
    torch.manual_seed(1)
    a = torch.rand(1, 4, 8, 8)
    mask = torch.zeros(8, 8)
    mask[:4] = 1
    other = a.clone()
    other[..., 4:, :] = torch.rand(1, 4, 4, 8) * 5  # differs only outside the mask
    assert gram_loss(other, losses.gram(a, mask), mask).item() < 1e-10
    assert gram_loss(other, losses.gram(a)).item() > 1e-4


def test_content_and_tv():
    a = torch.rand(1, 3, 6, 6)
    assert losses.content_loss(a, a).item() == 0
    assert losses.content_loss(a, a + 1).item() == 1.0
    assert losses.tv_loss(torch.ones(1, 3, 5, 5)).item() == 0
    assert losses.tv_loss(a).item() > 0


@pytest.mark.parametrize("n", [5, 40, 64])
def test_gram_match_equals_the_direct_loss_with_its_gradient_in_both_forms(n):
    from style_core.losses import GramTerm, gram_match, gram_terms, weighted_gram

    gen = torch.Generator().manual_seed(n)
    pixels = torch.rand(32, n, generator=gen, dtype=torch.float64, requires_grad=True)
    weight = torch.rand(n, generator=gen, dtype=torch.float64)
    target = weighted_gram(torch.rand(32, 50, generator=gen, dtype=torch.float64), torch.ones(50, dtype=torch.float64))
    direct = ((weighted_gram(pixels, weight) - target) ** 2).mean()
    (g_direct,) = torch.autograd.grad(direct, pixels)
    factor, match = gram_match(target, weight, n)
    assert match.small == (n < 32)
    fast = match.factor * gram_terms(pixels, [GramTerm(0, n, factor, match)])[0]
    (g_fast,) = torch.autograd.grad(fast, pixels)
    torch.testing.assert_close(fast, direct)
    torch.testing.assert_close(g_fast, g_direct)
    plain = ((weighted_gram(pixels, torch.ones(n, dtype=torch.float64)) - target) ** 2).mean()
    factor, match = gram_match(target, None, n)
    assert factor is None
    torch.testing.assert_close(match.factor * gram_terms(pixels, [GramTerm(0, n, None, match)])[0], plain)


@pytest.mark.parametrize("channels_last", [False, True])
def test_gram_terms_node_equals_each_regions_gram_match_with_its_gradient(channels_last):
    """The one autograd node for a layer's regions: the same losses and pixel gradient as autograd through each
    region's loss written out directly, in both forms (a region wider and narrower than the channel count), with and
    without a per-pixel factor, on rows no region covers (zero gradient) and on a channels-last map's transposed
    rows."""
    from style_core.losses import GramTerm, gram_match, gram_terms, weighted_gram

    gen = torch.Generator().manual_seed(3)
    c, spans = 16, [(0, 40), (40, 45), (45, 90), (95, 100)]  # 90..95 uncovered
    rows = torch.rand(100, c, generator=gen, dtype=torch.float64)
    pixels = (rows if channels_last else rows.T.contiguous().T).T.detach().requires_grad_(True)
    terms, direct, f64 = [], [], torch.float64
    for k, (a, b) in enumerate(spans):
        target = weighted_gram(torch.rand(c, 30, generator=gen, dtype=f64), torch.ones(30, dtype=f64))
        weight = None if k == 2 else torch.rand(b - a, generator=gen, dtype=torch.float64)
        factor, match = gram_match(target, weight, b - a)
        terms.append(GramTerm(a, b, factor, match))
        direct.append((target, torch.ones(b - a, dtype=f64) if weight is None else weight, match.factor))
    assert [t.match.small for t in terms] == [False, True, False, True]
    upstream = torch.rand(len(terms), generator=gen, dtype=torch.float64)
    # each raw term is the direct loss over the factor the objective's mix folds in
    want = torch.stack([((weighted_gram(pixels[:, t.start:t.stop], w) - target) ** 2).mean() / f
                        for t, (target, w, f) in zip(terms, direct)])
    (g_want,) = torch.autograd.grad(want @ upstream, pixels)
    got = gram_terms(pixels, terms)
    (g_got,) = torch.autograd.grad(got @ upstream, pixels)
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(g_got, g_want)
    assert g_got[:, 90:95].abs().max() == 0 and g_got[:, :90].abs().min() > 0


def test_gram_terms_on_bf16_pixels_score_in_float32_and_return_a_bf16_gradient():
    """The bf16 twin's pixels go in as they are: the losses equal those of the same pixels upcast first (float32
    statistics), and the gradient comes back in bf16, within bf16 rounding of the float32 one, in both forms and on
    uncovered rows. Fails if the statistics were taken in bf16 (losses off by far more than float32 rounding)."""
    from style_core.losses import GramTerm, gram_match, gram_terms, weighted_gram

    gen = torch.Generator().manual_seed(5)
    c, spans = 64, [(0, 3000), (3000, 3040), (3040, 6000)]  # 6000..6100 uncovered
    rows = torch.rand(6100, c, generator=gen).bfloat16()
    terms = []
    for k, (a, b) in enumerate(spans):
        target = weighted_gram(torch.rand(c, 500, generator=gen) * 1.1, torch.ones(500))
        weight = None if k == 2 else torch.rand(b - a, generator=gen)
        terms.append(GramTerm(a, b, *gram_match(target, weight, b - a)))
    assert [t.match.small for t in terms] == [False, True, False]
    upstream = torch.rand(len(terms), generator=gen)
    low = rows.T.detach().requires_grad_(True)  # (C, n) read as transposed rows, as from a channels-last map
    wide = rows.float().T.detach().requires_grad_(True)
    got, want = gram_terms(low, terms), gram_terms(wide, terms)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, want, rtol=1e-6, atol=0)
    (g_low,) = torch.autograd.grad(got @ upstream, low)
    (g_wide,) = torch.autograd.grad(want @ upstream, wide)
    assert g_low.dtype == torch.bfloat16
    torch.testing.assert_close(g_low.float(), g_wide, rtol=2e-2, atol=2e-2 * float(g_wide.abs().max()))
    assert g_low[:, 6000:].abs().max() == 0


def test_channels_last_maps_give_the_same_statistics_without_reordering():
    """The bf16 twin's channels-last feature maps: the same Gram, mean/cov and region gathers as the default
    layout, read as transposed rows (no copy of the whole map at every layer)."""
    torch.manual_seed(0)
    f = torch.randn(1, 8, 6, 5)
    cl = f.contiguous(memory_format=torch.channels_last)
    assert losses.channel_matrix(cl).data_ptr() == cl.data_ptr()  # a view, not a copy
    assert torch.allclose(losses.channel_matrix(cl), losses.channel_matrix(f))
    mask = torch.rand(6, 5)
    assert torch.allclose(losses.gram(cl, mask), losses.gram(f, mask), atol=1e-6)
    for a, b in zip(losses.mean_cov(cl, mask), losses.mean_cov(f, mask)):
        assert torch.allclose(a, b, atol=1e-6)
    packed = losses.pack_masks({"a": mask, "b": 1 - mask}, 6, 5)
    got, want = losses.gather_regions(cl, packed), losses.gather_regions(f, packed)
    for region in want:
        assert torch.allclose(got[region][0], want[region][0])
