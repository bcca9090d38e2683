"""A TensorFlow Lite graph run op by op in torch: the few float ops a MobileNet-style segmenter is made of.

The flatbuffer is parsed by the `tflite` package (pure Python); weights stored as float16 are widened once at load.
Tensors stay in TFLite's NHWC layout between ops, so elementwise ops broadcast as the graph was written, and are
turned to NCHW only inside convolutions, pools and resizes. Anything else in a graph is refused at load with its
op's name, never run wrongly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

_DTYPES = {0: np.float32, 1: np.float16, 2: np.int32}  # TFLite TensorType: FLOAT32, FLOAT16, INT32
_ACTIVATIONS: dict[int, Callable[[torch.Tensor], torch.Tensor]] = {0: lambda x: x, 1: F.relu, 3: F.relu6}
# mediapipe's custom op: a transposed convolution with bias; its options are the raw struct (padding, stride w, h).
TRANSPOSE_CONV_BIAS = b"Convolution2DTransposeBias"


class GraphError(RuntimeError):
    """A graph this interpreter cannot run (an op or a type it does not know)."""


@dataclass(frozen=True)
class _Op:
    name: str
    inputs: tuple[int, ...]
    output: int
    shape: tuple[int, ...]  # the output's shape, as the graph declares it
    options: object | None
    custom: bytes


def _same_padding(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """TensorFlow's SAME padding along one axis: the odd pixel goes after, not before (unlike torch's 'same')."""
    out = -(-size // stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


class TfliteGraph:
    """One subgraph of a .tflite file, callable on an NHWC float tensor."""

    def __init__(self, path: str | Path) -> None:
        import tflite

        model = tflite.Model.GetRootAsModel(Path(path).read_bytes(), 0)
        graph = model.Subgraphs(0)
        names = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}
        option_types = {
            "CONV_2D": tflite.Conv2DOptions,
            "DEPTHWISE_CONV_2D": tflite.DepthwiseConv2DOptions,
            "AVERAGE_POOL_2D": tflite.Pool2DOptions,
            "ADD": tflite.AddOptions,
            "MUL": tflite.MulOptions,
            "RESIZE_BILINEAR": tflite.ResizeBilinearOptions,
        }
        self._same = tflite.Padding.SAME
        self.constants: dict[int, torch.Tensor] = {}
        for i in range(graph.TensorsLength()):
            tensor = graph.Tensors(i)
            data = model.Buffers(tensor.Buffer()).DataAsNumpy()
            if isinstance(data, int) or data.size == 0:  # no buffer: an activation, filled while running
                continue
            if tensor.Type() not in _DTYPES:
                raise GraphError(f"tensor {tensor.Name()!r} has TFLite type {tensor.Type()}, which is not supported")
            array = np.frombuffer(data.tobytes(), _DTYPES[tensor.Type()]).reshape(tensor.ShapeAsNumpy())
            wide = array.astype(np.float32) if array.dtype == np.float16 else array.copy()
            self.constants[i] = torch.from_numpy(wide)
        self.ops: list[_Op] = []
        for i in range(graph.OperatorsLength()):
            op = graph.Operators(i)
            code = model.OperatorCodes(op.OpcodeIndex())
            name = names.get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()), "?")
            custom = code.CustomCode() or b""
            if name not in _RUNNERS or (name == "CUSTOM" and custom != TRANSPOSE_CONV_BIAS):
                raise GraphError(f"op {name} {custom.decode(errors='replace')} is not supported".rstrip())
            options = None
            table = op.BuiltinOptions()
            if name in option_types and table is not None:
                options = option_types[name]()
                options.Init(table.Bytes, table.Pos)
                fused = getattr(options, "FusedActivationFunction", lambda: 0)()
                if fused not in _ACTIVATIONS:
                    raise GraphError(f"op {name} with fused activation {fused} is not supported")
            out = op.Outputs(0)
            self.ops.append(
                _Op(
                    name,
                    tuple(op.Inputs(j) for j in range(op.InputsLength())),
                    out,
                    tuple(int(v) for v in graph.Tensors(out).ShapeAsNumpy()),
                    options,
                    op.CustomOptionsAsNumpy().tobytes() if name == "CUSTOM" else b"",
                )
            )
        self.input, self.output = graph.Inputs(0), graph.Outputs(0)
        self.input_shape = tuple(int(v) for v in graph.Tensors(self.input).ShapeAsNumpy())

    @torch.no_grad()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        values = dict(self.constants)
        values[self.input] = x.float()
        for op in self.ops:
            y = _RUNNERS[op.name](self, op, [values[i] if i >= 0 else None for i in op.inputs])
            if tuple(y.shape) != op.shape:
                raise GraphError(f"{op.name} gave shape {tuple(y.shape)}, the graph says {op.shape}")
            values[op.output] = y
        return values[self.output]

    def _conv(self, op: _Op, args: list, depthwise: bool) -> torch.Tensor:
        x, w = args[0].permute(0, 3, 1, 2), args[1]
        o = op.options
        # TFLite kernels: conv [out, h, w, in]; depthwise [1, h, w, channels x multiplier]
        kernel = w.permute(3, 0, 1, 2) if depthwise else w.permute(0, 3, 1, 2)
        stride, dilation = (o.StrideH(), o.StrideW()), (o.DilationHFactor(), o.DilationWFactor())
        if o.Padding() == self._same:
            (top, bottom), (left, right) = (
                _same_padding(x.shape[2 + a], kernel.shape[2 + a], stride[a], dilation[a]) for a in (0, 1)
            )
            x = F.pad(x, (left, right, top, bottom))
        groups = x.shape[1] if depthwise else 1
        y = F.conv2d(x, kernel, args[2] if len(args) > 2 else None, stride, 0, dilation, groups)
        return _ACTIVATIONS[o.FusedActivationFunction()](y).permute(0, 2, 3, 1)

    def _average_pool(self, op: _Op, args: list) -> torch.Tensor:
        o = op.options
        x = args[0].permute(0, 3, 1, 2)
        if o.Padding() == self._same and (o.FilterHeight(), o.FilterWidth()) != tuple(x.shape[2:]):
            raise GraphError("AVERAGE_POOL_2D with SAME padding is not supported")  # TF leaves the pad out of the mean
        y = F.avg_pool2d(x, (o.FilterHeight(), o.FilterWidth()), (o.StrideH(), o.StrideW()))
        return _ACTIVATIONS[o.FusedActivationFunction()](y).permute(0, 2, 3, 1)

    def _resize(self, op: _Op, args: list) -> torch.Tensor:
        o = op.options
        if o.AlignCorners() or not o.HalfPixelCenters():
            raise GraphError("RESIZE_BILINEAR is supported with half-pixel centres only")  # torch's align_corners=False
        size = [int(v) for v in args[1]]
        return F.interpolate(args[0].permute(0, 3, 1, 2), size=size, mode="bilinear").permute(0, 2, 3, 1)

    def _transpose_conv_bias(self, op: _Op, args: list) -> torch.Tensor:
        _, stride_w, stride_h = np.frombuffer(op.custom[:12], np.int32)
        kernel = args[1].permute(3, 0, 1, 2)  # [out, h, w, in] -> [in, out, h, w]
        y = F.conv_transpose2d(args[0].permute(0, 3, 1, 2), kernel, args[2], (int(stride_h), int(stride_w)))
        return y[:, :, : op.shape[1], : op.shape[2]].permute(0, 2, 3, 1)


def _elementwise(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> Callable:
    def run(graph: TfliteGraph, op: _Op, args: list) -> torch.Tensor:
        return _ACTIVATIONS[op.options.FusedActivationFunction() if op.options else 0](fn(args[0], args[1]))

    return run


_RUNNERS: dict[str, Callable[[TfliteGraph, _Op, list], torch.Tensor]] = {
    "DEQUANTIZE": lambda g, op, a: a[0].float(),  # float16 weights, widened at load already
    "CONV_2D": lambda g, op, a: g._conv(op, a, depthwise=False),
    "DEPTHWISE_CONV_2D": lambda g, op, a: g._conv(op, a, depthwise=True),
    "AVERAGE_POOL_2D": TfliteGraph._average_pool,
    "RESIZE_BILINEAR": TfliteGraph._resize,
    "CUSTOM": TfliteGraph._transpose_conv_bias,
    "HARD_SWISH": lambda g, op, a: F.hardswish(a[0]),
    "RELU": lambda g, op, a: F.relu(a[0]),
    "LOGISTIC": lambda g, op, a: torch.sigmoid(a[0]),
    "ADD": _elementwise(torch.add),
    "MUL": _elementwise(torch.mul),
}
