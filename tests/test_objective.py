"""The real objective (the one the engine optimizes) against its loss written out from the definitions in float64:
values and gradients, plain and guided, Gram and W2. And its style-statistics cache: blends, keys."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from style_core import StyleConfig
from style_core.backbone import random_backbone
from style_core.frames import Guidance
from style_core.objective import STYLE_STATS, Objective, clear_style_cache, layer_weights

LAYERS = dict(content_layers=("relu2_2", "relu4_2"), style_layers=("relu1_1", "relu2_1", "relu3_1", "relu5_1"))


@pytest.fixture(scope="module")
def net():
    return random_backbone("vgg19", [*LAYERS["content_layers"], *LAYERS["style_layers"]], seed=3)


def _fit(mask: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """A soft mask at a layer's resolution: bilinear, clamped to [0, 1], pixels at or under 1e-3 dropped."""
    m = F.interpolate(mask.double()[None, None], size=(h, w), mode="bilinear", align_corners=False)[0, 0].clamp(0, 1)
    return torch.where(m > 1e-3, m, torch.zeros_like(m)).reshape(-1)


def _weighted_gram(f: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    p = f.reshape(f.shape[1], -1)
    return p @ torch.diag(m) @ p.T / (p.shape[0] * max(float(m.sum()), 1.0))


def _mean_cov(f: torch.Tensor, m: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    p = f.reshape(f.shape[1], -1)
    w = m / m.sum()
    mean = p @ w
    centred = p - mean[:, None]
    return mean, centred @ torch.diag(w) @ centred.T + 1e-5 * torch.eye(p.shape[0], dtype=p.dtype)


def _sqrtm(s: torch.Tensor) -> torch.Tensor:
    vals, vecs = torch.linalg.eigh(s)
    return vecs @ torch.diag(vals.clamp_min(0).sqrt()) @ vecs.T


def _w2(x: tuple, s: tuple) -> torch.Tensor:
    """Squared W2 between Gaussians (mean, cov), over the channel count."""
    (mx, cx), (ms, cs) = x, s
    root = _sqrtm(cs)
    cross = torch.linalg.eigvalsh(root @ cx @ root).clamp_min(1e-8).sqrt().sum()
    return (((mx - ms) ** 2).sum() + torch.trace(cx) + torch.trace(cs) - 2 * cross) / mx.shape[0]


def reference(net64, cfg: StyleConfig, content, style, x, guidance: Guidance | None) -> torch.Tensor:
    """(content, style, tv, total) from the definitions, in float64."""
    fc, fs, fx = net64(content.double()), net64(style.double()), net64(x)
    content_term = 0.0
    for n in cfg.content_layers:
        diff = (fx[n] - fc[n]) ** 2
        if guidance is None:
            d = diff.mean()
        else:
            w = F.interpolate(guidance.content_weight_map.double(), size=diff.shape[-2:], mode="bilinear")
            d = (diff * w).sum() / (w.sum() * diff.shape[1])
        content_term = content_term + d / (fc[n] ** 2).mean()
    regions = list(guidance.content_masks) if guidance else [None]
    region_total = sum(guidance.region_weights[r] for r in regions) if guidance else 1.0
    style_term = 0.0
    for layer, lw in zip(cfg.style_layers, layer_weights(cfg)):
        for r in regions:
            mx = _fit(guidance.content_masks[r], *fx[layer].shape[-2:]) if r else torch.ones(fx[layer][0, 0].numel())
            ms = _fit(guidance.style_masks[0][r], *fs[layer].shape[-2:]) if r else torch.ones(fs[layer][0, 0].numel())
            mx, ms = mx.double(), ms.double()
            if cfg.style_loss == "gram":
                target = _weighted_gram(fs[layer], ms)
                loss = ((_weighted_gram(fx[layer], mx) - target) ** 2).mean() / (target**2).mean()
            else:
                target = _mean_cov(fs[layer], ms)
                scale = ((target[0] ** 2).sum() + torch.trace(target[1])) / target[0].shape[0]
                loss = _w2(_mean_cov(fx[layer], mx), target) / scale
            share = guidance.region_weights[r] / region_total if r else 1.0
            style_term = style_term + lw * share * loss
    tv = ((x[..., 1:, :] - x[..., :-1, :]) ** 2).mean() + ((x[..., 1:] - x[..., :-1]) ** 2).mean()
    total = cfg.content_weight * content_term + cfg.style_weight * style_term + cfg.tv_weight * tv
    return torch.stack([content_term, style_term, tv, total])


def _pictures():
    gen = torch.Generator().manual_seed(11)
    content = torch.rand(1, 3, 40, 48, generator=gen, dtype=torch.float64)
    style = torch.rand(1, 3, 44, 40, generator=gen, dtype=torch.float64) ** 2
    x = (content + 0.2 * torch.randn(content.shape, generator=gen, dtype=torch.float64)).clamp(0, 1)
    return content, style, x


def _guidance() -> Guidance:
    def masks(h: int, w: int, centre: float) -> dict[str, torch.Tensor]:
        xx = torch.linspace(0, 1, w)[None, :].expand(h, w)
        a = torch.sigmoid((xx - centre) * 12)
        return {"left": 1 - a, "right": a}

    weight_map = 0.5 + torch.linspace(0, 1, 30)[None, None, :, None] * torch.linspace(1, 2.5, 36)[None, None, None]
    return Guidance(masks(24, 30, 0.45), [masks(22, 20, 0.6)], {"left": 1.0, "right": 0.4}, weight_map)


@pytest.mark.parametrize("guided", [False, True], ids=["plain", "guided"])
@pytest.mark.parametrize("style_loss", ["gram", "w2"])
def test_the_objective_equals_the_written_out_loss_in_value_and_gradient(net, style_loss, guided):
    cfg = StyleConfig(
        device="cpu", autocast=False, style_loss=style_loss, content_weight=2.0, style_weight=7.0, tv_weight=3.0,
        layer_weight_exp=0.5, **LAYERS,
    )
    content, style, x = _pictures()
    guidance = _guidance() if guided else None
    clear_style_cache()
    objective = Objective(net, cfg, content.float(), [style.float()], ["style"], [1.0], guidance)
    x32 = x.float().requires_grad_(True)
    parts = objective.parts(x32)
    (grad,) = torch.autograd.grad(parts[3], x32)

    x64 = x.clone().requires_grad_(True)
    want = reference(copy.deepcopy(net).double(), cfg, content, style, x64, guidance)
    (want_grad,) = torch.autograd.grad(want[3], x64)
    # float32 against float64: the values agree to float32 rounding (observed: under 1e-5 relative)
    # float32 against float64. Observed: Gram 3e-7 (values and gradient); W2 1e-4 and 5e-5, its float32 eigenvalues
    # of covariances whose smallest eigenvalues sit at eps (1e-5) being the least precise part. A wrong weight,
    # normaliser or region share is off by far more than these bounds.
    tolerance = 1e-5 if style_loss == "gram" else 1e-3
    value_error = ((parts.double() - want.detach()).abs() / want.detach().abs()).max()
    grad_error = (grad.double() - want_grad).norm() / want_grad.norm()
    assert value_error < tolerance, (parts, want)
    assert grad_error < tolerance, grad_error


def test_a_blend_is_the_mixture_of_the_two_styles_moments(net):
    """Blend weights mix the statistics: Gram matrices linearly, Gaussians as a mixture (mean and second moment)."""
    content, style, _ = _pictures()
    other = torch.rand(style.shape, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    c, s1, s2 = content.float(), style.float(), other.float()
    for loss in ("gram", "w2"):
        cfg = StyleConfig(device="cpu", autocast=False, style_loss=loss, **LAYERS)
        one, two = (Objective(net, cfg, c, [s], [k], [1.0]) for s, k in ((s1, "s1"), (s2, "s2")))
        mixed = Objective(net, cfg, c, [s1, s2], ["s1", "s2"], [3.0, 1.0])
        for key, (target, _) in mixed.style_targets.items():
            a, b = one.style_targets[key][0], two.style_targets[key][0]
            if loss == "gram":
                torch.testing.assert_close(target, 0.75 * a + 0.25 * b)
                continue
            mean = 0.75 * a.mean + 0.25 * b.mean
            second = 0.75 * (a.cov + torch.outer(a.mean, a.mean)) + 0.25 * (b.cov + torch.outer(b.mean, b.mean))
            torch.testing.assert_close(target.mean, mean)
            torch.testing.assert_close(target.cov, second - torch.outer(mean, mean), rtol=1e-4, atol=1e-6)
        assert not torch.allclose(one.parts(c), mixed.parts(c))


def test_the_style_cache_keys_on_the_network_its_precision_and_the_masks(net, bf16_cpu):
    content, style, _ = _pictures()
    c, s = content.float(), style.float()
    cfg = StyleConfig(device="cpu", autocast=False, **LAYERS)
    clear_style_cache()
    Objective(net, cfg, c, [s], ["k"], [1.0])
    Objective(net, cfg, c, [s], ["k"], [1.0])
    assert len(STYLE_STATS) == 1  # the same picture, network and settings: computed once
    bf16 = Objective(net, cfg.replace(autocast=True), c, [s], ["k"], [1.0])
    assert len(STYLE_STATS) == 2 and bf16.run_net is not net  # the bf16 copy's statistics are its own
    twin = copy.deepcopy(net)
    Objective(twin, cfg, c, [s], ["k"], [1.0])
    assert len(STYLE_STATS) == 3  # another network object, even one with the same weights
    guidance = _guidance()
    Objective(net, cfg, c, [s], ["k"], [1.0], guidance)
    moved = copy.deepcopy(guidance)
    left, right = moved.style_masks[0]["left"], moved.style_masks[0]["right"]
    moved.style_masks[0].update(left=right, right=left)
    swapped = Objective(net, cfg, c, [s], ["k"], [1.0], moved)
    assert len(STYLE_STATS) == 5  # the same regions with other masks are other statistics
    first = Objective(net, cfg, c, [s], ["k"], [1.0], guidance)
    assert not torch.allclose(first.style_targets["relu1_1", "left"][0], swapped.style_targets["relu1_1", "left"][0])
    clear_style_cache()
    assert len(STYLE_STATS) == 0
