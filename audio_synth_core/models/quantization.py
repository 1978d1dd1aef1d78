"""Dynamic int8 quantization of an ONNX bundle (``quantize_int8``): onnxruntime's
``quantize_dynamic`` (QInt8 weights, activations quantized at run time) on every graph, written as
a complete bundle whose ``tts.json`` records the method and the source bundle's version.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import onnx

from audio_synth_core.generators.onnx_runtime import GRAPHS, MANIFEST
from audio_synth_core.models.onnx_export import graph_entry, write_manifest


def _pretransposed_gemms(model: onnx.ModelProto) -> onnx.ModelProto:
    """``Gemm(transB=1)`` on an initializer -> ``Gemm(transB=0)`` on one transposed copy of it.

    quantize_dynamic rewrites each such Gemm as a MatMul by transposing its weight in place,
    assuming no other node uses it; in the unrolled diffusion loop every step shares the step
    MLP's weights, so they were transposed once per step and the shapes no longer matched."""
    from onnx import numpy_helper

    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    transposed: dict[str, str] = {}
    for node in graph.node:
        if node.op_type != "Gemm" or len(node.input) < 2 or node.input[1] not in inits:
            continue
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        if attrs.get("transB", 0) != 1:
            continue
        name = node.input[1]
        if name not in transposed:
            array = numpy_helper.to_array(inits[name]).T.copy()
            transposed[name] = f"{name}__t"
            graph.initializer.append(numpy_helper.from_array(array, transposed[name]))
        node.input[1] = transposed[name]
        for attr in node.attribute:
            if attr.name == "transB":
                attr.i = 0
    used = {i for node in graph.node for i in node.input}
    for name in transposed:
        if name not in used:
            graph.initializer.remove(inits[name])
    return model


class _DropPreprocessHint(logging.Filter):
    """quantize_dynamic logs a hint to run its pre-processing on the root logger at every call."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "pre-processing before quantization" not in record.getMessage()


def _quantize_graphs(
    src: Path,
    out: Path,
    manifest: dict[str, Any],
    files: dict[str, Any],
    op_types: Sequence[str] | None,
) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    for graph in GRAPHS:
        if graph not in manifest["files"]:
            continue
        name = manifest["files"][graph]["file"]
        tmp = out / (name + ".tmp")
        float_tmp = out / (name + ".float.tmp")
        onnx.save(_pretransposed_gemms(onnx.load(src / name)), float_tmp)
        quantize_dynamic(
            float_tmp,
            tmp,
            weight_type=QuantType.QInt8,
            op_types_to_quantize=list(op_types) if op_types is not None else None,
            # Shape inference cannot type some tensors of the unrolled diffusion loop; all are float.
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )
        float_tmp.unlink()
        # The quantizer keeps the shape-inference annotations of every tensor: metadata
        # onnxruntime does not need, ~15% of an unrolled diffusion graph.
        model = onnx.load(tmp)
        del model.graph.value_info[:]
        onnx.save(model, tmp)
        os.replace(tmp, out / name)
        files[graph] = graph_entry(out / name)


def quantize_int8(
    onnx_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    op_types: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Dynamic int8 quantization (onnxruntime ``quantize_dynamic``, QInt8 weights, activations
    quantized at run time) of every graph of a bundle; writes a complete bundle into ``out_dir``.

    ``op_types`` None quantizes every op type onnxruntime can (Conv, MatMul, Gemm, Gather, ...):
    the smallest bundle, but onnxruntime's CPU ``ConvInteger`` is slower than its float Conv, and
    these models are mostly convolutions. ``("MatMul", "Gemm", "Gather")`` keeps convolutions in
    float: close to fp32 speed, a smaller saving."""
    src, out = Path(onnx_dir), Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / MANIFEST).unlink(missing_ok=True)
    source_raw = (src / MANIFEST).read_bytes()
    manifest = json.loads(source_raw)
    files = {}
    hint = _DropPreprocessHint()
    logging.getLogger().addFilter(hint)
    try:
        _quantize_graphs(src, out, manifest, files, op_types)
    finally:
        logging.getLogger().removeFilter(hint)
    manifest["files"] = files
    manifest["quantization"] = {
        "method": "onnxruntime.quantization.quantize_dynamic",
        "weight_type": "QInt8",
        "op_types": list(op_types) if op_types is not None else "all",
        "source_version": "sha256:" + hashlib.sha256(source_raw).hexdigest()[:16],
    }
    write_manifest(out, manifest)
    return manifest
