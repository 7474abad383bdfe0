"""`tgc FILE --onnx OUT.onnx`: the emitted module exported with `torch.onnx.export` (compile time).

The module is the very source tgc emits, built with its checked constructor arguments and run
on zero inputs of the checked shapes (as verification does). The batch dimension of every input
is dynamic in the exported graph; the other sizes are those of the check (`--input` sets the
ones without a size). Needs the optional `onnx` extra (onnx and onnxscript, which torch's
exporter uses); onnxruntime runs the result.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os

from .verify import constructor_args, construct, load_source, zero_inputs


def onnx_paths(path: str, class_names: list[str]) -> list[str]:
    """OUT.onnx for a file with one model; OUT_<Model>.onnx for each of several."""
    if len(class_names) == 1:
        return [path]
    stem, ext = os.path.splitext(path)
    return [f"{stem}_{name}{ext or '.onnx'}" for name in class_names]


def export_onnx(checked, source_name: str, code: str, names, path: str) -> tuple[list[str], list[str]]:
    """(the files written, problems): each model of `code` exported to its ONNX file."""
    try:
        import onnx  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError:
        return [], ["--onnx needs the onnx and onnxscript packages: pip install 'tgc[onnx]'"]
    import torch

    namespace, problem = load_source(code, source_name, "onnx")
    if problem is not None:
        return [], [problem]
    classes = [n.cls for n in names.models]
    written, problems = [], []
    for shapes, cls, out in zip(checked.models, classes, onnx_paths(path, classes)):
        try:
            model = construct(getattr(namespace, cls), constructor_args(shapes))
        except OSError as exc:  # a `load ... from` file that is not there: its weights are the graph's
            problems.append(f"{cls}: cannot build the model to export it: {exc.strerror or exc}: {exc.filename}")
            continue
        example = zero_inputs(shapes)
        batch = torch.export.Dim("batch", min=1, max=1 << 20)
        dynamic = tuple({0: batch} for _ in example)
        quiet = io.StringIO()
        exporter_log = logging.getLogger("torch.onnx")  # "torchvision is not installed" and such
        level = exporter_log.level
        exporter_log.setLevel(logging.ERROR)
        try:
            with contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet), torch.no_grad():
                torch.onnx.export(model, example, out, dynamo=True, dynamic_shapes=dynamic,
                                  input_names=[i.name for i in shapes.graph.inputs])
        except Exception as exc:  # the exporter's own limits (an op it cannot translate, ...)
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            problems.append(f"{cls}: torch.onnx.export failed: {first[:300]}")
            continue
        finally:
            exporter_log.setLevel(level)
        written.append(out)
    return written, problems
