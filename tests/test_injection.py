"""Injection corpus (issue 13, "A compiler people trust"): hostile names and strings never get
into the emitted code as code.

Every case is a .tg program that `tgc check` accepts, with hostile text in one or more of the
places a name or a string can appear: model, block, parameter, input, value and layer names,
repeat bodies and their context values, `load` paths, doc comments (the emitted docstrings),
train sections (data paths, targets, `head:`, `unfreeze(...)`), dimension names (shapes,
`flatten(name=)`, `unsqueeze(name=)`, `rename(...)`, `einsum` specs), `str` parameter defaults,
imported files and the file name itself. The text is Python's keywords and soft keywords,
builtins, dunders and mangled names, the names the emitted files define or import (`torch`,
`nn`, `F`, `os`, `_load_weights`, `weights_dir`, the training script's `main`, `train`,
`SETTINGS`, `cfg`, `build`, ... and its helpers), nn.Module's own attributes, quotes, triple
quotes, backslashes, escapes, Jinja delimiters and `__import__('os').system('touch PWNED')`.

Each case is compiled with `tgc FILE -o OUT` (a folder for a train section), which verifies the
module with torch.fx (exit 0, never the internal error's 3); then every generated file is

(a) black-clean (formatting it again changes nothing);
(b) free of calls outside an allow-list, as a name (`super`) or an attribute (`.relu`), the
    file's own classes and functions, loop variables and `self.<submodule>(...)` aside: for a
    model file what the golden models, every op's example compiled (`tgc ops NAME`) and the
    model template call; for a training script what the examples' training folders (digits,
    train, char_gpt), the script's template and its emitter call; for train_utils.py what the
    vendored library calls. `exec`, `eval`, `__import__`, `open` or `.system` fail;
(c) free of the payload in string constants, but for docstrings (an `Expr` first in a module,
    class or function, where it is inert) and the strings the case gives as data (a path, a
    target, a `str` default), which must come out as those exact strings;
(d) inert and working: imported in a fresh process from an empty working folder, the model file
    creates no file (no `PWNED`, the folder's listing unchanged), its class instantiates (with
    the weights its `load`s name, saved first) and runs a forward pass on inputs of the checked
    shapes; a training script imports, prints `--help`, and builds and runs the model from its
    settings table (`build(cfg, ...)`: the constructor's keyword names agree with model.py).

Where a name is rejected (a non-ASCII letter: LANGUAGE.md 9), the case asserts a clean
diagnostic instead. Each fix of the compiler came with the case that failed before it (marked
`# bug:` below).
"""

from __future__ import annotations

import ast
import contextlib
import io
import json
import os
import re
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import black
import pytest

from tgc.compiler import naming, pipeline
from tgc.compiler.cli import main
from tgc.compiler.emit_train import OPTIMIZERS
from tgc.compiler.naming import name_program

ROOT = Path(__file__).resolve().parent.parent
GOLDEN_MODELS = ROOT / "tests" / "golden" / "models"
VENDORED = ROOT / "runtime" / "vendored"
TRAIN_EXAMPLES = ("digits.tg", "train.tg", "char_gpt.tg")

PAYLOAD = "__import__('os').system('touch PWNED')"
# what must never be in a string constant of the emitted code (docstrings and data aside)
MARKERS = ("PWNED", "__import__", "{{", "}}", "{%", "%}", "{#", "#}")
BLACK_MODE = black.Mode(target_versions={black.TargetVersion.PY310})


@dataclass(frozen=True)
class Case:
    id: str
    text: str
    data: tuple[str, ...] = ()  # strings of the program that the output keeps as data
    filename: str = "case.tg"
    files: dict[str, str] = field(default_factory=dict)  # further files beside the .tg file
    rejected: str | None = None  # a code: the program is refused with that diagnostic instead
    doc: tuple[str, ...] = ()  # lines that the model's docstring must hold as they are

    @property
    def trains(self) -> bool:
        return any(line.startswith("train") for line in self.text.splitlines())


def case(id: str, text: str, **kw) -> Case:
    return Case(id, textwrap.dedent(text).lstrip("\n"), **kw)


P = PAYLOAD  # in the cases below: the payload as tg source text (it has no `"` or `\`)
S = "__import__('os').system('touch PWNED').pt"  # a file name with the payload

CASES = [
    # ------------------------------------------------------------------ keywords and soft keywords
    case("keywords", """
        model False(class: int = 4, def: int = 3, return: int = 2) {
            input lambda: [batch, feature=class]
            yield = lambda >> linear(def) >> relu
            await = yield >> linear(return)
            output await
        }
    """),
    case("soft_keywords", """
        model match(case: int = 4, type: int = 3, _: int = 2) {
            input _x: [batch, feature=case]
            type_ = _x >> linear(type)
            match_ = type_ >> repeat(_) { linear >> relu }
        }
    """),
    case("keywords_everywhere_in_a_block", """
        block def(class: int, return: float = 0.0) (lambda) -> yield {
            pass = lambda >> linear(class) >> relu >> dropout(return)
            yield = add(lambda, pass)
        }
        model None(if: int = 4) {
            input else: [batch, feature=if]
            while = else >> def(if) >> def(class=if, return=0.1)
        }
    """),
    case("keyword_renamed_next_to_its_renaming", """
        model M(class: int = 4, class_: int = 3, class__1: int = 2) {
            input x: [batch, feature=class]
            h = x >> linear(class_)
            h_ = h >> linear(class__1)
            h__1 = h_ >> linear(class)
            output h__1
        }
    """),
    # ------------------------------------------------------------------ builtins
    case("builtins", """
        model print(len: int = 4, super: int = 3, object: int = 2, int: int = 5) {
            input open: [batch, feature=len]
            exec = open >> linear(super) >> relu
            eval = exec >> linear(object)
            __import__ = eval >> linear(int)
            compile = __import__ >> sigmoid
        }
    """),
    case("builtin_blocks_and_layers", """
        block print(range: int) (exec) -> eval {
            eval = exec >> linear(range) >> relu
        }
        model open(range: int = 4, list: int = 2) {
            input input_: [batch, feature=range]
            layer getattr = linear(range)
            setattr = input_ >> getattr >> getattr >> print(range) >> repeat(list) { print(range) }
        }
    """),
    # ------------------------------------------------------------------ dunders and mangling
    case("dunders", """
        model __init__(__class__: int = 4, __dict__: int = 3) {
            input __self__: [batch, feature=__class__]
            __h = __self__ >> linear(__dict__)
            __init__ = __h >> linear(__class__)
            __call__ = add(__init__, __self__)
        }
    """),
    case("dunder_block_and_inputs", """
        block __init__(__len__: int) (__x) -> __y {
            __y = __x >> linear(__len__) >> relu
        }
        model __M(__file__: int = 4, __name__: int = 2) {
            input __builtins__: [batch, feature=__file__]
            __spec__ = __builtins__ >> __init__(__file__) >> repeat(__name__) { __init__(__file__) }
        }
    """),
    case("mangled_and_underscore_names", """
        model _M(__: int = 4, ___: int = 3, _: int = 2) {
            input __x__: [batch, feature=__]
            __h = __x__ >> linear(___)
            ___h = __h >> linear(_)
            _h_ = ___h >> linear(__)
        }
    """),
    # ------------------------------------------------------------------ names the model file itself uses
    case("imports_of_the_model_file", """
        model torch(nn: int = 4, F: int = 3, os: int = 2) {
            input math: [batch, feature=nn]
            sys = math >> linear(F) >> gelu(approximate="tanh")
            typing = sys >> linear(os) >> softmax
            Tensor = typing >> log_softmax
        }
    """),
    case("self_and_forward", """
        model forward(self: int = 4, forward_: int = 3, super: int = 2) {
            input self_: [batch, feature=self]
            forward = self_ >> linear(forward_)
            __init__ = forward >> linear(super)
            modules = __init__ >> relu
            output modules
        }
    """),
    # bug: a parameter named `weights_dir` next to the `weights_dir` argument a `load` adds
    # (duplicate argument), `_load_weights` shadowing the helper, a class `os` shadowing the module
    case("load_helper_names", """
        block _load_weights(os: int) (x) -> y {
            y = x >> linear(os)
        }
        model os(weights_dir: int = 4, _load_weights: int = 3, path: int = 2) {
            input module: [batch, feature=4]
            enc = module >> linear(weights_dir)
            load enc from "w/enc.pt"
            y = enc >> _load_weights(_load_weights) >> linear(path)
        }
    """),
    # bug: verification replaces the module's `_load_weights`, which was this model's class
    case("model_named_like_the_load_helper", """
        model _load_weights(weights_dir: int = 4) {
            input os: [batch, feature=4]
            y = os >> linear(weights_dir)
        }
    """),
    case("load_named_like_helpers", """
        model M(d: int = 4) {
            input x: [batch, feature=d]
            _load_weights = x >> linear(d)
            load _load_weights from "_load_weights.pt"
            weights_dir = _load_weights >> frozen linear(d)
            load weights_dir from "weights_dir/os.pt"
        }
    """),
    # bug: a model parameter named like a block's class shadowed the class in `__init__`
    case("parameter_named_like_a_class", """
        block residual(width: int) (x) -> y {
            y = x + (x >> linear(width) >> relu)
        }
        model Net(Residual: int = 4, LinearRelu: int = 2, Net: int = 3) {
            input x: [batch, feature=Residual]
            h = x >> residual(Residual) >> repeat(LinearRelu) { linear >> relu }
            y = h >> linear(Net)
        }
    """),
    # ------------------------------------------------------------------ nn.Module's own attributes
    # bug: `self.compile`, `self._modules`, `self._version` ... are nn.Module's: a submodule there
    # is shadowed by the method (or breaks the module)
    case("module_attributes", """
        model M(d: int = 4) {
            input x: [batch, feature=d]
            compile = x >> linear(d)
            _modules = compile >> linear(d)
            _parameters = _modules >> linear(d)
            _version = _parameters >> linear(d)
            T_destination = _version >> linear(d)
            register_module = T_destination >> linear(d)
            xpu = register_module >> linear(d)
            _apply = xpu >> linear(d) >> relu
        }
    """),
    case("module_attributes_as_layers_and_stored_parameters", """
        model M(_buffers: str = "tanh", to_empty: int = 4, training: int = 2) {
            input x: [batch, feature=to_empty]
            layer set_extra_state = linear(to_empty)
            bfloat16 = x >> set_extra_state >> gelu(approximate=_buffers) >> set_extra_state
            ipu, mtia = split(bfloat16, 2, dim=feature)
            frozen_modules = ipu >> frozen linear(training)
            output frozen_modules, mtia
        }
    """),
    # ------------------------------------------------------------------ the training script's names
    # bug (every case of this group): a model class named like something train.py binds or reads
    # where it builds the model
    # bug: `from model import main` was shadowed by train.py's `def main`
    case("model_named_main", """
        model main(hidden: int = 8) {
            input x: [batch, feature=64]
            logits = x >> linear(hidden) >> relu >> linear(10)
        }
        train main {
            data: sklearn("digits")
            task: classification
            loss: cross_entropy
            optimizer: adam(lr=1e-3)
            epochs: 1
        }
    """),
    # bug: `model = optimizer(...)` in build (a local read before it is bound)
    case("model_named_optimizer", """
        model optimizer(cfg: int = 8, info: int = 4, device: int = 2) {
            input x: [batch, feature=64]
            logits = x >> linear(cfg) >> relu >> linear(info) >> linear(device)
        }
        train optimizer {
            data: sklearn("digits")
            task: classification
            loss: cross_entropy
            optimizer: adam(lr=1e-3)
            epochs: 1
        }
    """),
    case("model_named_cfg", """
        model cfg(SETTINGS: int = 8, INPUTS: int = 4, build: int = 2, main: int = 3) {
            input evaluate: [batch, feature=64]
            outputs = evaluate >> linear(SETTINGS) >> relu >> linear(INPUTS) >> linear(build)
            logits = outputs >> linear(main)
        }
        train cfg {
            data: sklearn("digits")
            task: classification
            loss: cross_entropy
            optimizer: adam(lr=1e-3)
            epochs: 1
        }
    """),
    case("model_named_like_a_training_helper", """
        model read_csv(math: int = 8) {
            input sys: [batch, feature=64]
            os = sys >> linear(math) >> relu
            logits = os >> linear(10)
        }
        train read_csv {
            data: sklearn("digits")
            task: classification
            loss: cross_entropy
            optimizer: adam(lr=1e-3)
            epochs: 1
        }
    """),
    case("model_named_SETTINGS", """
        model SETTINGS(torch: int = 8) {
            input nn: [batch, feature=64]
            F = nn >> linear(torch) >> relu
            logits = F >> linear(10)
        }
        train SETTINGS {
            data: sklearn("digits")
            task: classification
            loss: cross_entropy
            optimizer: adam(lr=1e-3)
            epochs: 1
        }
    """),
    case("model_named_build", """
        model build(outputs: int = 8) {
            input INPUTS: [batch, feature=64]
            evaluate = INPUTS >> linear(outputs) >> relu
            logits = evaluate >> linear(10)
        }
        train build {
            data: sklearn("digits")
            task: classification
            loss: cross_entropy
            optimizer: adam(lr=1e-3)
            epochs: 1
        }
    """),
    case("model_named_unfreeze_with_frozen_and_head", """
        model unfreeze(class: int = 8) {
            input self: [batch, feature=64]
            __init__ = self >> frozen linear(class)
            lambda = __init__ >> relu >> linear(10)
            def = lambda >> softmax
            output def, lambda
        }
        train unfreeze {
            data: sklearn("digits")
            task: classification
            loss: cross_entropy
            optimizer: adam(lr=1e-3)
            epochs: 1
            head: lambda
            callbacks: unfreeze(__init__, epoch=1)
        }
    """),
    # ------------------------------------------------------------------ strings
    case("load_path_payload", f"""
        model M(d: int = 4) {{
            input x: [batch, feature=d]
            enc = x >> linear(d)
            load enc from "{S}"
        }}
    """, data=(S,)),
    case("load_path_quotes_and_escapes", r"""
        model M(d: int = 4) {
            input x: [batch, feature=d]
            a = x >> linear(d)
            load a from "q\"uote\\back'slash\u00e9.pt"
            b = a >> linear(d)
            load b from "{{ x }}{% if %}{# c #}\"\"\"'''.pt"
        }
    """, data=("q\"uote\\back'slash\u00e9.pt", "{{ x }}{% if %}{# c #}\"\"\"'''.pt")),
    case("load_path_with_newline_escapes", r"""
        model M(d: int = 4) {
            input x: [batch, feature=d]
            enc = x >> linear(d)
            load enc from "a\nb\r\tc\u2028d\f.pt"
        }
    """, data=("a\nb\r\tc\u2028d\f.pt",)),
    case("str_parameter_defaults", r"""
        model M(s: str = "__import__('os').system('touch PWNED')", t: str = "\"\"\"\\\n{{ x }}{% y %}", d: int = 4) {
            input x: [batch, feature=d]
            y = x >> linear(d)
        }
    """, data=(PAYLOAD, '"""\\\n{{ x }}{% y %}')),
    case("block_str_parameter", r"""
        block b(mode: str = "__import__('os').system('touch PWNED')", d: int = 4) (x) -> y {
            y = x >> linear(d)
        }
        model M {
            input x: [batch, feature=4]
            y = x >> b(mode="\"\"\"}}{{") >> b
        }
    """, data=(PAYLOAD, '"""}}{{')),
    # ------------------------------------------------------------------ doc comments
    case("doc_triple_quotes_and_backslashes", r'''
        # A doc with """ triple quotes """, a backslash \ and \n \N{BULLET} \x41 \u0041 escapes.
        # It ends in a quote"
        model M(d: int = 4) {
            input x: [batch, feature=d]
            y = x >> linear(d)
        }
    ''', doc=('A doc with """ triple quotes """, a backslash \\ and \\n \\N{BULLET} \\x41 \\u0041 escapes.',
              'It ends in a quote"')),
    case("doc_payload_and_jinja", f"""
        # {P}
        # {{{{ cls.name }}}} {{% for x in y %}} {{# not a comment #}} {{% endfor %}}
        # \"\"\"; {P}; \"\"\"
        block b(d: int) (x) -> y {{
            y = x >> linear(d)
        }}
        # {P}\"\"\"
        model M(d: int = 4) {{
            input x: [batch, feature=d]
            y = x >> b(d)
        }}
    """, doc=(PAYLOAD + '"""',)),
    case("doc_ends_in_backslash_and_quotes", r'''
        # a backslash at the end \
        # quotes at the end ""
        # """"
        model M(d: int = 4) {
            input x: [batch, feature=d]
            y = x >> linear(d)
        }
    ''', doc=("a backslash at the end \\", 'quotes at the end ""', '""""')),
    case("doc_control_characters", "# a carriage\rreturn, a form\x0cfeed, a line\u2028separator, a bell\x07\n"
         "model M(d: int = 4) {\n    input x: [batch, feature=d]\n    y = x >> linear(d)\n}\n"),
    case("comments_in_the_body", f"""
        model M(d: int = 4) {{  # {P}
            # \"\"\" {P} \"\"\"
            input x: [batch, feature=d]  # {{{{ x }}}}
            y = x >> linear(d)  # \\
            # {{% raw %}}
            output y  # '''
        }}
    """),
    # ------------------------------------------------------------------ train sections
    case("train_csv_payload", f"""
        model M(d: int = 4) {{
            input x: [batch, feature=d]
            logits = x >> linear(3)
        }}
        train M {{
            data: csv("{S}.csv", target="{P}")
            task: classification
            loss: cross_entropy
            optimizer: adam(lr=1e-3)
            epochs: 1
        }}
    """, data=(S + ".csv", PAYLOAD)),
    case("train_csv_quotes", r"""
        model M(d: int = 4) {
            input x: [batch, feature=d]
            y = x >> linear(1)
        }
        train M {
            data: csv("d\"\"\"\\{{ x }}.csv", target="t\"\"\"\\{% y %}")
            task: regression
            loss: mse
            optimizer: sgd(lr=1e-3)
            valid: csv("v\\n\"\"\".csv", target="t\"\"\"\\{% y %}")
            epochs: 1
        }
    """, data=('d"""\\{{ x }}.csv', 't"""\\{% y %}', 'v\\n""".csv')),
    case("train_text_names", """
        model lr_find(vocab: int = 8, d: int = 4) {
            input sample: long[batch, token]
            logits = sample >> embedding(vocab, d) >> linear(vocab)
        }
        train lr_find {
            data: text("__import__('os').txt", vocab="char")
            task: next_token
            context: 4
            optimizer: adam(lr=1e-3)
            epochs: 1
        }
    """, data=("__import__('os').txt",)),
    # ------------------------------------------------------------------ dimension names
    case("dimension_names", """
        model M(class: int = 4) {
            input x: [batch, def=3, lambda=class]
            a = x >> flatten(name=__import__) >> linear(6)
            b = x >> rename(lambda=return) >> linear(class)
            c = b >> unsqueeze(dim=1, name=self)
            output a, c
        }
    """),
    case("einsum_with_keyword_dimensions", """
        model M(d: int = 4) {
            input q: [batch, class=3, self=d]
            input k: [batch, def=5, self=d]
            s = einsum(q, k, spec="class self, def self -> class def")
            y = s >> softmax(dim=def)
        }
    """),
    case("run_time_dimensions_named_like_python", """
        model M(d: int = 4) {
            input x: [batch, __class__, lambda, feature=d]
            h = x >> mean(dim=lambda) >> linear(d)
            y = h >> flatten(name=print)
        }
    """),
    # ------------------------------------------------------------------ free inputs, outputs, repeats
    case("bare_program_free_inputs", """
        a = class >> linear(4) >> relu
        b = self >> linear(4)
        merge add(a, b)
    """),
    case("destructured_outputs", """
        model M(d: int = 4) {
            input x: [batch, token, feature=d]
            async, await, yield = lstm(x, hidden=d)
            del, global = split(async, 2, dim=feature)
            output del, global, await, yield
        }
    """),
    case("repeat_context_values", """
        block step(d: int) (x, lambda) -> y {
            y = x + lambda
        }
        model M(d: int = 4, layer: int = 2, range: int = 2) {
            input x: [batch, feature=d]
            input lambda: [batch, feature=d]
            __class__ = x >> linear(d)
            for = __class__ >> repeat(layer) { step(lambda, d) } >> repeat(range) { step(__class__, d) >> relu }
        }
    """),
    case("layers_and_ties", """
        model M(vocab: int = 8, d: int = 4) {
            input idx: long[batch, token]
            layer class = embedding(vocab, d)
            layer __init__ = linear(d)
            h = idx >> class >> __init__ >> relu >> __init__
            forward = h >> linear(vocab, bias=false, tie=class)
        }
    """),
    case("std_blocks_with_hostile_names", """
        import std
        model M(class: int = 8, self: int = 4) {
            input torch: [batch, feature=class]
            nn = torch >> mlp(self, self, p=0.1) >> resnet_block_in(self)
        }
        block resnet_block_in(channels: int) (x) -> y {
            y = x >> linear(channels)
        }
    """),
    case("imported_block_file", """
        import "lib\\"\\"\\"{{x}}.tg"
        model M(class: int = 4) {
            input x: [batch, feature=class]
            y = x >> imported(class)
        }
    """, files={'lib"""{{x}}.tg': f"# {PAYLOAD}\n# \"\"\"\\\nblock imported(d: int) (x) -> y {{\n    y = x >> linear(d)\n}}\n"}),
    # ------------------------------------------------------------------ the file name
    case("file_name_with_quotes_and_backslashes", """
        model M(d: int = 4) {
            input x: [batch, feature=d]
            y = x >> linear(d)
        }
    """, filename='a"""b\\N{x}\\x.tg'),
    # bug: train.py's docstring quoted the file name without escaping it
    case("train_file_name_with_quotes_and_backslashes", """
        model M(d: int = 8) {
            input x: [batch, feature=64]
            logits = x >> linear(d) >> relu >> linear(10)
        }
        train M {
            data: sklearn("digits")
            task: classification
            loss: cross_entropy
            optimizer: adam(lr=1e-3)
            epochs: 1
        }
    """, filename='t"""\\N{x}\\x{{ y }}.tg'),
    # ------------------------------------------------------------------ more places
    case("block_inputs_and_outputs", """
        block two(class: int) (self, super) -> (def, lambda) {
            def = self >> linear(class)
            lambda = super + def
        }
        model M(d: int = 4) {
            input x: [batch, feature=d]
            async, await = two(x, x, d)
            __class__, __dict__ = two(async, await, class=d)
            output __class__, __dict__
        }
    """),
    case("dimension_names_in_layout_ops", """
        model M(d: int = 4) {
            input x: [batch, class=2, def=3, feature=d]
            a = x >> permute(dims=[batch, def, class, feature]) >> transpose(class, def)
            b = a >> reshape([lambda=6, feature=d]) >> mean(dim=lambda)
            c = stack(b, b, dim=yield) >> sum(dim=[yield])
            e = x[class=0] >> cat(x[class=1], dim=def)
            output c, e
        }
    """),
    case("parameters_and_positions_named_like_python", """
        model M(vocab: int = 8, d: int = 4) {
            input idx: long[batch, lambda]
            __class__ = parameter([1, 1, feature=d], init="normal")
            _parameters = parameter([1, feature=d], init="ones")
            super = arange(idx, dim=lambda) >> embedding(vocab, d)
            self = (idx >> embedding(vocab, d)) + super + __class__ + _parameters
        }
    """),
    case("attention_mask_named_like_python", """
        model M(d: int = 8) {
            input __x: [batch, token, feature=d]
            input __mask__: bool[batch, token]
            out, _ = attention(__x, __x, __x, __mask__, heads=2)
            lambda, weights = attention(out, out, out, heads=2, causal=true)
            output lambda, weights
        }
    """),
    case("frozen_repeat_and_load_of_a_repeat", """
        block exec(d: int) (x) -> y {
            y = x >> linear(d) >> relu
        }
        model M(d: int = 4, __len__: int = 2) {
            input x: [batch, feature=d]
            eval = x >> frozen repeat(__len__) { exec(d) }
            load eval from "__len__/eval.pt"
            compile = eval >> frozen exec(d)
            load compile from "compile.pt"
        }
    """, data=("__len__/eval.pt", "compile.pt")),
    case("names_that_differ_by_case_and_derived_names", """
        model M(d: int = 4, D: int = 3) {
            input x: [batch, feature=d]
            X = x >> linear(D)
            x_linear = x >> linear(d) >> relu >> linear(D)
            y = X + x_linear + (x >> linear(D))
            y_linear = y >> linear(d)
            output y_linear
        }
    """),
    case("very_long_names", "model " + "M" * 300 + "(" + "d" * 250 + ": int = 4) {\n    input " + "x" * 200
         + ": [batch, feature=" + "d" * 250 + "]\n    " + "y" * 220 + " = " + "x" * 200 + " >> linear(" + "d" * 250
         + ") >> relu\n}\n"),
    # bug: train.py constructed the model without the input width the program leaves to the data
    # (`Model()`, not `Model(x_features=cfg["model.x_features"] or info["sizes"][0][0])`)
    case("bare_program_with_a_train_section", """
        class = x >> linear(8) >> relu
        self = class >> linear(3)
        train {
            data: csv("__import__('os').csv", target="class")
            task: classification
            loss: cross_entropy
            optimizer: rmsprop(lr=1e-3)
            scheduler: step(step_size=1)
            valid: 0.25
            test: 0.25
            metrics: accuracy
            callbacks: early_stopping(monitor="valid_accuracy", patience=1), checkpoint(every=1)
            epochs: 1
        }
    """, data=("__import__('os').csv", "class")),
    case("train_npz_and_many_inputs", """
        model M(d: int = 4) {
            input self: [batch, feature=d]
            input cfg: [batch, feature=d]
            logits = (self + cfg) >> linear(1)
        }
        train M {
            data: npz("{{ data }}.npz")
            task: regression
            loss: huber(delta=1.0)
            optimizer: adamw(lr=1e-3)
            scheduler: cosine
            epochs: 1
        }
    """, data=("{{ data }}.npz",)),
    case("train_settings_from_hostile_parameter_names", """
        model M(epochs: int = 8, lr: float = 0.1, help: int = 4, device: int = 2, _: bool = true) {
            input x: [batch, feature=64]
            logits = x >> linear(epochs) >> dropout(lr) >> relu >> linear(help) >> linear(device) >> linear(10)
        }
        train M {
            data: sklearn("digits")
            task: classification
            loss: cross_entropy
            optimizer: sgd(lr=1e-3, momentum=0.9)
            scheduler: plateau
            epochs: 1
        }
    """),
    # bug: a repeat body's class took the enclosing parameter `class` as `class_`, but its
    # constructor call passed `class=` (a SyntaxError)
    case("repeat_bodies_with_hostile_ops_and_names", """
        block __init__(class: int) (x) -> y {
            y = x >> linear(class) >> relu
        }
        model M(class: int = 4, __len__: int = 2, lambda: int = 1) {
            input x: [batch, feature=class]
            self = x >> repeat(__len__) { __init__(class) >> __init__(class=class) >> layernorm }
            forward = self >> repeat(lambda) { linear >> gelu >> dropout(0.1) >> relu }
            eval = forward >> repeat(2) { linear(class) }
        }
    """),
    case("stored_str_parameter_named_like_a_module_attribute", """
        block b(__dict__: str = "tanh", state_dict: str = "none") (x) -> y {
            y = x >> gelu(approximate=__dict__) >> gelu(approximate=state_dict)
        }
        model M(forward: str = "tanh") {
            input x: [batch, feature=4]
            y = x >> b(forward) >> b
        }
    """),
    case("einsum_spec_with_a_payload", """
        model M(d: int = 4) {
            input q: [batch, token, feature=d]
            s = einsum(q, q, spec="__import__('os') -> token")
        }
    """, rejected="E021"),
    # ------------------------------------------------------------------ rejected with a diagnostic
    case("cyrillic_value_name", "model M {\n    input x: [batch, feature=4]\n    lin\u0435ar = x >> linear(3)\n}\n",
         rejected="E002"),
    case("cyrillic_op_name", "model M {\n    input x: [batch, feature=4]\n    y = x >> lin\u0435ar(3)\n}\n",
         rejected="E002"),
    case("cyrillic_model_name", "model \u041c {\n    input x: [batch, feature=4]\n    y = x >> linear(3)\n}\n",
         rejected="E002"),
    case("raw_newline_in_a_string", 'model M {\n    input x: [batch, feature=4]\n    y = x >> linear(3)\n'
         '    load y from "a\n.pt"\n}\n', rejected="E003"),
    case("train_and_model_are_reserved_words", "model M {\n    input x: [batch, feature=4]\n"
         "    train = x >> linear(3)\n    model = train >> relu\n}\n", rejected="E006"),
    case("python_string_in_tg", "model M {\n    input x: [batch, feature=4]\n    y = x >> linear(3)\n"
         "    load y from '__import__(\"os\")'\n}\n", rejected="E002"),
]


# ------------------------------------------------------------------------------ the checks


def _compile(c: Case, root: Path) -> tuple[int, str, Path, Path]:
    """(exit status, stderr, the .tg file, the output: a .py file or a folder)."""
    root.mkdir(parents=True, exist_ok=True)
    src = root / c.filename
    src.write_text(c.text, encoding="utf-8")
    for name, text in c.files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    out = root / ("out" if c.trains else "out.py")
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        status = main([str(src), "-o", str(out)])
    return status, err.getvalue(), src, out


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of the docstring constants: an Expr string first in a module, class or function."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(
                    first.value.value, str):
                out.add(id(first.value))
    return out


def _self_call(func: ast.AST, attrs: set[str]) -> bool:
    """`self.X(...)` or `self.X[k](...)`, X a submodule or attribute the class assigns."""
    while isinstance(func, ast.Subscript):
        func = func.value
    return (isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == "self"
            and func.attr in attrs)


def called_names(code: str | ast.AST) -> set[str]:
    """What code calls: the name (`super`) or attribute (`.relu`) of each call, but for the file's
    own classes and functions, what it imports from the files beside it, loop variables, and
    `self.<attr>(...)` of an attribute it assigns."""
    tree = ast.parse(code) if isinstance(code, str) else code
    own: set[str] = set()
    attrs: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.ClassDef, ast.FunctionDef)):
            own.add(node.name)
        elif isinstance(node, ast.ImportFrom) and node.module in ("model", "train_utils"):
            own.update(a.asname or a.name for a in node.names)
        elif isinstance(node, (ast.For, ast.comprehension)):
            own.update(n.id for n in ast.walk(node.target) if isinstance(n, ast.Name))
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self" \
                and isinstance(node.ctx, ast.Store):
            attrs.add(node.attr)
    out: set[str] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        f = node.func
        if isinstance(f, ast.Name):
            if f.id not in own:
                out.add(f.id)
        elif _self_call(f, attrs):
            continue
        elif isinstance(f, ast.Attribute):
            out.add("." + f.attr)  # a method or a module's function: `.eval` is not `eval`
        else:
            out.add(f"<{type(f).__name__}>")
    return out


_CALL = re.compile(r"(\.)?\b([A-Za-z_]\w*)\(")


def _template_calls(path: Path) -> set[str]:
    """The calls written in a generator's source (a template, the code that fills it in)."""
    return {dot + name for dot, name in _CALL.findall(path.read_text(encoding="utf-8"))}


def _kind(path: Path) -> str:
    return {"train_utils.py": "utils"}.get(path.name, "train" if path.name.startswith("train") else "model")


@pytest.fixture(scope="module")
def allowed(tmp_path_factory) -> dict[str, set[str]]:
    """What the emitted files of each kind legitimately call, from known-good output: model
    files from the golden models and every op's example compiled (`tgc ops NAME`); training
    scripts from the examples' training folders and what the script's template and its emitter
    write; train_utils.py from the vendored library it is copied from."""
    from tgc.compiler.help import emitted_code
    from tgc.compiler.ops.registry import all_ops

    kinds: dict[str, set[str]] = {"model": set(), "train": set(), "utils": set()}
    for path in sorted(GOLDEN_MODELS.glob("*.py")):
        kinds["model"] |= called_names(path.read_text(encoding="utf-8"))
    kinds["model"] |= _template_calls(ROOT / "compiler" / "templates" / "model.py.j2")
    kinds["model"] |= {".ModuleList"}  # a repeat with context values (emit.py)
    for spec in all_ops().values():
        emitted = emitted_code(spec)
        assert emitted is not None, spec.name
        kinds["model"] |= called_names(ast.Module([s for line in emitted[1] for s in ast.parse(line).body], []))
    for path in sorted(VENDORED.glob("*.py")):
        kinds["utils"] |= called_names(path.read_text(encoding="utf-8"))
    kinds["train"] |= _template_calls(ROOT / "compiler" / "templates" / "train.py.j2")
    kinds["train"] |= _template_calls(ROOT / "compiler" / "emit_train.py")
    kinds["train"] |= {"." + name for name in OPTIMIZERS.values()}  # `torch.optim.{name}(...)`
    root = tmp_path_factory.mktemp("allowed")
    for example in TRAIN_EXAMPLES:
        out = root / Path(example).stem
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            assert main([str(ROOT / "examples" / example), "-o", str(out), "--no-verify"]) == 0
        for path in out.glob("*.py"):
            kinds[_kind(path)] |= called_names(path.read_text(encoding="utf-8"))
    for kind in ("model", "train"):
        for forbidden in ("exec", "eval", "__import__", "open", "compile", "globals", ".system", ".popen"):
            assert forbidden not in kinds[kind], (kind, forbidden)
    assert "getattr" not in kinds["model"]
    return kinds


def _string_problems(c: Case, text: str) -> list[str]:
    tree = ast.parse(text)
    docs = _docstrings(tree)
    data = set(c.data)
    problems = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Constant) and isinstance(node.value, str)) or id(node) in docs:
            continue
        value = node.value
        if value in data or any(value.endswith("/" + d) for d in data):
            continue
        for marker in MARKERS:
            if marker in value:
                problems.append(f"line {node.lineno}: {marker!r} in the string constant {value!r}")
    return problems


RUNNER = r'''
import contextlib, importlib.util, io, json, os, sys, traceback
sys.dont_write_bytecode = True
import torch

def load(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module

def inputs(specs):
    out = []
    for shape, dtype in specs:
        dt = getattr(torch, dtype)
        out.append(torch.randn(shape, dtype=dt) if dt.is_floating_point else torch.zeros(shape, dtype=dt))
    return out

def listing(*folders):
    return {f: sorted(os.listdir(f)) for f in folders}

def run(job):
    cwd, out = job["cwd"], job["out"]
    before = listing(cwd, os.path.dirname(job["model"]))
    os.chdir(cwd)
    module = load(job["model"], "injected_" + job["id"])
    cls = getattr(module, job["cls"])
    kwargs = {}
    if hasattr(module, "_load_weights"):  # save the weights its loads name, then load them
        real, seen = module._load_weights, []
        module._load_weights = lambda m, path, weights_dir: seen.append((m, path))
        cls(*job["args"])
        module._load_weights = real
        for m, path in seen:
            target = os.path.join(job["weights"], path)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            torch.save(m.state_dict(), target)
        kwargs["weights_dir"] = job["weights"]
    model = cls(*job["args"], **kwargs).eval()
    with torch.no_grad():
        result = model(*inputs(job["inputs"]))
    for t in result if isinstance(result, tuple) else (result,):
        assert isinstance(t, torch.Tensor), type(t)
    if job["train"]:
        for name in ("model", "train_utils"):
            sys.modules.pop(name, None)
        script = load(os.path.join(out, "train.py"), "train_" + job["id"])
        with contextlib.redirect_stdout(io.StringIO()) as text:
            try:
                script.parse_command_line(["--help"])
            except SystemExit as exc:
                assert exc.code == 0, exc.code
        assert "--epochs" in text.getvalue()
        options, cfg, given = script.parse_command_line([])
        xs = inputs(job["inputs"])
        info = {"sizes": [list(x.shape[1:]) for x in xs], "vocabulary": [str(i) for i in range(job["vocab"])]}
        trained, _ = script.build(cfg, info, torch.device("cpu"))
        trained.eval()
        with torch.no_grad():
            script.outputs(trained, xs, cfg, torch.device("cpu"))
        sys.path.remove(out)
    after = listing(cwd, os.path.dirname(job["model"]))
    assert after == before, (before, after)

results = {}
for job in json.loads(sys.stdin.read()):
    try:
        run(job)
        results[job["id"]] = None
    except BaseException:
        results[job["id"]] = traceback.format_exc()
    pwned = [os.path.join(d, f) for d, _, fs in os.walk(job["root"]) for f in fs if f == "PWNED"]
    if pwned:
        results[job["id"]] = f"created {pwned}"
print(json.dumps(results))
'''


@dataclass
class Built:
    status: int
    stderr: str
    src: Path
    out: Path
    files: dict[str, str] = field(default_factory=dict)
    run_error: str | None = "not run"


def _job(c: Case, b: Built, root: Path) -> dict:
    from tgc.runtime.compile_time.verify import constructor_args, zero_inputs

    checked = pipeline.check(str(b.src), pipeline.Options())
    shapes = checked.checked.models[0]
    names = name_program(checked.checked)
    cwd, weights = root / "cwd", root / "weights"
    cwd.mkdir()
    weights.mkdir()
    model = b.out / "model.py" if c.trains else b.out
    out_type = shapes.types[shapes.graph.outputs[0]]
    vocab = out_type.dims[-1].size.value if out_type.dims and out_type.dims[-1].size is not None else 8
    return {"id": c.id, "root": str(root), "cwd": str(cwd), "weights": str(weights), "out": str(b.out),
            "model": str(model), "cls": names.models[0].cls, "args": constructor_args(shapes),
            "inputs": [[list(t.shape), str(t.dtype).replace("torch.", "")] for t in zero_inputs(shapes)],
            "train": c.trains, "vocab": vocab or 8}


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, Built]:
    """Every case compiled; the accepted ones then imported and run in one fresh process."""
    results: dict[str, Built] = {}
    jobs = []
    for c in CASES:
        root = tmp_path_factory.mktemp(c.id)
        status, stderr, src, out = _compile(c, root / "src")
        b = results[c.id] = Built(status, stderr, src, out)
        if status != 0 or c.rejected:
            continue
        paths = sorted(out.glob("*.py")) if out.is_dir() else [out]
        b.files = {p.name: p.read_text(encoding="utf-8") for p in paths}
        jobs.append(_job(c, b, root))
    if jobs:
        proc = subprocess.run([sys.executable, "-c", RUNNER], input=json.dumps(jobs), capture_output=True,
                              text=True, timeout=600, cwd=str(tmp_path_factory.getbasetemp()))
        assert proc.returncode == 0, proc.stderr[-4000:]
        for id_, error in json.loads(proc.stdout.strip().splitlines()[-1]).items():
            results[id_].run_error = error
    return results


@pytest.mark.parametrize("c", CASES, ids=[c.id for c in CASES])
def test_hostile_program(c: Case, built, allowed):
    b = built[c.id]
    assert b.status != 3 and "internal error" not in b.stderr, b.stderr
    if c.rejected:
        assert b.status == 1, b.stderr
        assert f"[{c.rejected}]" in b.stderr, b.stderr
        return
    assert b.status == 0, b.stderr
    assert b.files, "nothing written"
    for name, text in b.files.items():
        assert text.startswith("# Generated by tgc"), name
        assert black.format_str(text, mode=BLACK_MODE) == text, f"{name} is not black-clean"
        outside = called_names(text) - allowed[_kind(Path(name))]
        assert not outside, f"{name} calls {sorted(outside)}"
        problems = _string_problems(c, text)
        assert not problems, f"{name}: " + "; ".join(problems)
    model_text = b.files["model.py" if c.trains else b.out.name]
    if c.doc:
        tree = ast.parse(model_text)
        model_class = [n for n in tree.body if isinstance(n, ast.ClassDef)][-1]  # models come last
        doc = ast.get_docstring(model_class, clean=True) or ""
        for line in c.doc:
            assert line in doc, (line, doc)
    assert b.run_error is None, b.run_error


def test_module_attributes_cover_nn_module():
    """No submodule or stored parameter may take a name nn.Module has (a method, `_modules`...)."""
    import torch

    # names from `__` on are renamed anyway (dunders, mangling); torch.compile patches a few such
    # (`___needs_generation_tag_patch`) onto nn.Module in the processes it runs in
    names = {n for n in dir(torch.nn.Module()) if not n.startswith("__")}
    assert names <= naming.MODULE_ATTRS, sorted(names - naming.MODULE_ATTRS)


def test_training_names_cover_the_training_scripts(tmp_path):
    """A model class may not take a name the training script binds at the top level or reads
    where it builds the model (`from model import main` would be shadowed by `def main`)."""
    from tgc.compiler.vendor import library

    definitions, imports = library()
    wanted = set(definitions) | {(a or n).split(".")[0] for imp in imports for n, a in imp.names}
    for example in TRAIN_EXAMPLES:
        out = tmp_path / Path(example).stem
        with contextlib.redirect_stdout(io.StringIO()):
            assert main([str(ROOT / "examples" / example), "-o", str(out), "--no-verify"]) == 0
        tree = ast.parse((out / "train.py").read_text(encoding="utf-8"))
        model_class = next(a.name for n in tree.body if isinstance(n, ast.ImportFrom) and n.module == "model"
                           for a in n.names)
        for node in tree.body:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                wanted |= {(a.asname or a.name).split(".")[0] for a in node.names}
            elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                wanted.add(node.name)
                if node.name == "build":
                    wanted |= {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
                    wanted |= {a.arg for a in node.args.args}
            elif isinstance(node, ast.Assign):
                wanted |= {n.id for t in node.targets for n in ast.walk(t) if isinstance(n, ast.Name)}
        wanted.discard(model_class)
    missing = wanted - naming.training_names() - naming.RESERVED
    assert not missing, sorted(missing)
