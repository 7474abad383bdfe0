"""The program level: top-level names, blocks in call order, imports and `train` sections.

`ProgramResolver` checks what the file defines (models, blocks, imports) against each other and
the ops, resolves every block's and model's body with a `statements.GraphResolver`, orders the
blocks so that callees come first (reporting recursion) and checks the `train` sections.
"""

from __future__ import annotations

from typing import Sequence

from .. import ast as A
from .. import ir
from ..diagnostics import Diagnostic, error, suggest
from ..ops.registry import OpSpec, all_ops
from .binding import Callee, block_callee, has_weights, with_weights
from .params import declared_params
from .statements import GraphResolver

# Keys a `train` section may hold (their value schemas are checked by the training stage).
TRAIN_KEYS = (
    "data",
    "task",
    "loss",
    "optimizer",
    "scheduler",
    "epochs",
    "batch_size",
    "valid",
    "test",
    "metrics",
    "callbacks",
    "seed",
    "device",
    "deterministic",
    "drop_last",
    "grad_clip",
    "num_workers",
    "standardize",
    "precision",
    "accumulate",
    "compile",
    "head",
    "context",
)

IMPLICIT_MODEL = "Model"


class ProgramResolver:
    """Resolves one file: its top-level definitions, then every graph and `train` section."""

    def __init__(
        self, program: A.Program, library_blocks: Sequence[A.Block], std: Sequence[A.Block] | None = None
    ):
        self.program = program
        self.std_blocks = tuple(std or ())
        self.libraries = frozenset() if std is None else frozenset({"std"})
        self.std_names = {b.name for b in self.std_blocks}
        # a clash with a std block is reported where the other block is defined (`_check_names`)
        self.clashing = tuple(b for b in library_blocks if b.name in self.std_names)
        self.library_blocks = self.std_blocks + tuple(b for b in library_blocks if b.name not in self.std_names)
        self.diags: list[Diagnostic] = []
        self.file = program.span.file

    def run(self) -> ir.Program | None:
        items = self.program.items
        models = [i for i in items if isinstance(i, A.Model)]
        blocks = [i for i in items if isinstance(i, A.Block)]
        trains = [i for i in items if isinstance(i, A.Train)]
        imports = [i for i in items if isinstance(i, A.Import)]
        bare = [i for i in items if not isinstance(i, (A.Model, A.Block, A.Train, A.Import))]

        self._check_imports(imports)
        if bare and models:
            self.diags.append(
                error(
                    bare[0].span,
                    "E015",
                    "a file with `model` definitions cannot also have top-level statements",
                    "move the statements into a `model`, or remove the `model` definitions",
                )
            )
        ops = self.visible_ops()
        self._check_names(blocks, models, ops)
        signatures, graphs, order = self._blocks(blocks, ops)
        model_graphs = self._models(models, bare, signatures)

        # ---- train sections
        model_names = [g.name for g in model_graphs] or [m.name for m in models]
        if bare and not models:
            model_names = [IMPLICIT_MODEL]
        train_defs = self._trains(trains, model_names)

        return ir.Program(
            file=self.file,
            blocks=tuple(graphs[n] for n in order if n in graphs),
            models=tuple(model_graphs),
            trains=tuple(train_defs),
            imports=tuple(imports),
        )

    def _check_imports(self, imports: Sequence[A.Import]) -> None:
        for imp in imports:
            if not imp.is_path and imp.target != "std":
                self.diags.append(
                    error(
                        imp.span,
                        "E037",
                        f"unknown library `{imp.target}`",
                        'the standard library is `import std`; import a file with `import "path/file.tg"`',
                    )
                )

    def _check_names(self, blocks: Sequence[A.Block], models: Sequence[A.Model], ops: dict[str, OpSpec]) -> None:
        """Top-level names: models and blocks share the namespace of ops and std blocks."""
        for b in self.clashing:
            self.diags.append(
                error(
                    b.name_span,
                    "E011",
                    f"imported block `{b.name}` has the name of a std block",
                    f"`import std` provides `{b.name}`; rename this block",
                )
            )
        seen: dict[str, A.Span] = {}
        for defn in (*blocks, *models):
            kind = "block" if isinstance(defn, A.Block) else "model"
            if defn.name in seen:
                self.diags.append(
                    error(
                        defn.name_span,
                        "E011",
                        f"`{defn.name}` is defined twice",
                        f"the first definition is on line {seen[defn.name].line}",
                    )
                )
                continue
            if kind == "block" and defn.name in ops:
                self.diags.append(
                    error(
                        defn.name_span,
                        "E011",
                        f"block `{defn.name}` has the name of a built-in op",
                        "choose another name for the block",
                    )
                )
                continue
            if kind == "block" and defn.name in self.std_names:
                self.diags.append(
                    error(
                        defn.name_span,
                        "E011",
                        f"block `{defn.name}` has the name of a std block",
                        f"`import std` provides `{defn.name}`; rename this block, or use the std one",
                    )
                )
                continue
            seen[defn.name] = defn.name_span

    def _blocks(
        self, blocks: Sequence[A.Block], ops: dict[str, OpSpec]
    ) -> tuple[dict[str, Callee], dict[str, ir.Graph], list[str]]:
        """Resolve every block (the file's and the imported ones): signatures, graphs, call order.

        Signatures come first, so that bodies may call blocks defined later in the file.
        """
        all_blocks = {b.name: b for b in self.library_blocks}
        for b in blocks:
            if b.name not in ops and b.name not in self.std_names:
                all_blocks[b.name] = b
        signatures: dict[str, Callee] = {}
        block_params: dict[str, tuple[ir.ParamDef, ...]] = {}
        for name, b in all_blocks.items():
            params = self._params(b.params, is_model=False, report=b in blocks)
            block_params[name] = params
            signatures[name] = block_callee(b, params)

        graphs: dict[str, ir.Graph] = {}
        calls: dict[str, list[tuple[str, A.Span]]] = {}
        for name, b in all_blocks.items():
            gr = GraphResolver(self, "block", name, signatures, report=b in blocks)
            graph = gr.block(b, block_params[name])
            calls[name] = gr.block_calls
            if graph is not None:
                graphs[name] = graph
        order = self._block_order(calls, all_blocks)
        # block weights: a block has weights when anything inside has
        for name in order:
            if name in graphs and name in signatures:
                signatures[name] = with_weights(signatures[name], has_weights(graphs[name], signatures))
        return signatures, graphs, order

    def _models(
        self, models: Sequence[A.Model], bare: Sequence[A.Statement], signatures: dict[str, Callee]
    ) -> list[ir.Graph]:
        """Resolve the models: those defined, or the implicit one of a file of bare statements."""
        model_graphs: list[ir.Graph] = []
        if bare and not models:
            gr = GraphResolver(self, "model", IMPLICIT_MODEL, signatures)
            g = gr.model_body(self.program.span, IMPLICIT_MODEL, None, (), tuple(bare))
            if g is not None:
                model_graphs.append(g)
        for m in models:
            params = self._params(m.params, is_model=True, report=True)
            gr = GraphResolver(self, "model", m.name, signatures)
            g = gr.model_body(m.span, m.name, m.doc, params, m.body)
            if g is not None:
                model_graphs.append(g)
        return model_graphs

    def visible_ops(self) -> dict[str, OpSpec]:
        """The ops this file can call: built-ins, and library ops (`mlp`) once imported."""
        return {n: s for n, s in all_ops().items() if s.library is None or s.library in self.libraries}

    # ---- parameters of a model or block
    def _params(
        self, params: Sequence[A.Param], *, is_model: bool, report: bool
    ) -> tuple[ir.ParamDef, ...]:
        defs, diags = declared_params(params, is_model=is_model)
        self.diags.extend(d for d in diags if report or d.is_error)  # see GraphResolver._finish
        return defs

    # ---- blocks in call order
    def _block_order(
        self, calls: dict[str, list[tuple[str, A.Span]]], blocks: dict[str, A.Block]
    ) -> list[str]:
        """Blocks with callees first; a cycle is reported once, at a call that closes it."""
        order: list[str] = []
        state: dict[str, int] = {}  # 1 visiting, 2 done
        reported: set[frozenset[str]] = set()

        def visit(name: str, path: list[str]) -> None:
            state[name] = 1
            for callee, span in calls.get(name, []):
                if callee not in blocks:
                    continue
                if state.get(callee) == 1:
                    cycle = path[path.index(callee) :] + [callee] if callee in path else [name, callee]
                    key = frozenset(cycle)
                    if key not in reported:
                        reported.add(key)
                        desc = " -> ".join(f"`{c}`" for c in cycle)
                        self.diags.append(
                            error(
                                span,
                                "E014",
                                f"block `{callee}` is recursive: {desc}"
                                if len(cycle) > 2
                                else f"block `{name}` calls itself",
                                "blocks cannot be recursive; use `repeat(n) { ... }` to apply a block several times",
                            )
                        )
                elif state.get(callee) is None:
                    visit(callee, path + [callee])
            state[name] = 2
            order.append(name)

        for name in blocks:
            if state.get(name) is None:
                visit(name, [name])
        # `visit` refers to itself, a reference cycle that would keep `self`, and with it the whole
        # program, alive until the cyclic GC runs (at exit, in `tgc check`): break it now
        del visit
        return order

    # ---- train sections
    def _trains(self, trains: Sequence[A.Train], model_names: list[str]) -> list[ir.TrainDef]:
        out: list[ir.TrainDef] = []
        seen_models: dict[str, A.Span] = {}
        for t in trains:
            if t.model is None:
                if len(model_names) != 1:
                    self.diags.append(
                        error(
                            t.span,
                            "E040",
                            "`train` needs the name of the model it trains",
                            "write `train NAME { ... }`" + (f" with one of {', '.join(f'`{n}`' for n in model_names)}" if model_names else ""),
                        )
                    )
                    continue
                model, span = model_names[0], t.span
            else:
                model, span = t.model.id, t.model.span
                if model not in model_names:
                    hint = suggest(model, model_names)
                    if hint is None and model_names == [IMPLICIT_MODEL]:
                        hint = f"a program without `model` definitions is the model `{IMPLICIT_MODEL}`"
                    self.diags.append(error(span, "E040", f"`train` names an unknown model `{model}`", hint))
                    continue
            if model in seen_models:
                self.diags.append(
                    error(span, "E040", f"model `{model}` has two `train` sections",
                          f"the first is on line {seen_models[model].line}")
                )
                continue
            seen_models[model] = span
            keys: dict[str, A.Span] = {}
            for item in t.items:
                if item.key not in TRAIN_KEYS:
                    self.diags.append(
                        error(item.key_span, "E040", f"unknown `train` setting `{item.key}`",
                              suggest(item.key, TRAIN_KEYS))
                    )
                elif item.key in keys:
                    self.diags.append(
                        error(item.key_span, "E040", f"`{item.key}` is set twice in `train`",
                              f"the first is on line {keys[item.key].line}")
                    )
                else:
                    keys[item.key] = item.key_span
            out.append(ir.TrainDef(t.span, model, t.items))
        return out

