"""Run-time sizes for a checked model: sizes of its run-time dimensions (`batch`, `token`,
`height`) under which every run-time requirement the checker recorded holds.

`tgc check` uses it to refuse a model that no input sizes can run (E053), and verification to
choose the sizes of the inputs it runs the emitted module on. Pure Python over the checker's
`Sym`s: no torch.
"""

from __future__ import annotations

from typing import Any

BATCH_SIZE = 2  # size of every input's batch dimension
SYMBOLIC_SIZE = 3  # size of any other run-time dimension (`token`) when no condition says otherwise
# Sizes tried for the run-time dimensions other than the batch: first one for all of them
# (`token`, `height` and `width` alike), then name by name. On meta a size costs nothing.
CANDIDATE_SIZES = (3, 4, 5, 6, 7, 8, 9, 12, 16, 18, 24, 27, 32, 36, 48, 64, 72, 144, 224)
BATCH_CANDIDATES = (2, 3, 4, 8, 16)  # the batch, should a condition exclude 2
MAX_SIZE_TRIALS = 20_000  # assignments `dim_sizes` evaluates before it gives up
MAX_EXTENT = 2**63 - 1  # torch's sizes are int64: a computed run-time size must fit


class SizeError(ValueError):
    """No sizes for the run-time dimensions satisfy the checker's run-time requirements."""


def _known_values(shapes) -> dict[str, Any]:
    """Parameter values an expression may read: the checked parameters and input widths."""
    return {**shapes.required_values, **shapes.param_values}


def _batch_variables(shapes) -> set[str]:
    """The run-time variables of the inputs' batch dimensions (the first, or one marked batch)."""
    out: set[str] = set()
    for inp in shapes.graph.inputs:
        for k, d in enumerate(shapes.types[inp.name].dims):
            if d.size is None and (d.batch or k == 0) and d.extent is not None:
                out |= d.extent.dims()
    return out


def dim_sizes(shapes) -> dict[str, int]:
    """The size chosen for each run-time dimension variable of a model: the batch 2, and for the
    others sizes under which every condition of `shapes.runtime_requires` holds (and every
    run-time size of a checked value is at least 1): one common size from `CANDIDATE_SIZES` for
    all of them when one fits, else a search name by name. Raises `SizeError` when none is found.

    The variables are those the inputs' dimensions read and those the conditions read; a name
    that no input has and no condition reads gets no size (its dimension is a wildcard)."""
    batch = _batch_variables(shapes)
    variables: set[str] = set(batch)
    for inp in shapes.graph.inputs:
        for d in shapes.types[inp.name].dims:
            if d.size is None and d.extent is not None:
                variables |= d.extent.dims()
    requires = list(getattr(shapes, "runtime_requires", ()))
    conditions = [a.condition for a in requires]
    for c in conditions:
        variables |= c.dims()
    # a computed run-time size (`(height - 3) // 2 + 1`) must come out positive and within int64
    # (`length * 10**30` fits no input), or torch fails before anything is compared; each
    # distinct expression is checked once
    extents = {d.rt.tree: d.rt for t in shapes.types.values() for d in t.dims
               if d.size is None and d.rt is not None}
    positive = [e for e in extents.values() if e.dims() <= variables]
    others = sorted(variables - batch)
    sizes = {name: BATCH_SIZE for name in batch}
    params = _known_values(shapes)
    if not conditions and not positive:
        sizes.update({name: SYMBOLIC_SIZE for name in others})
        return sizes

    def holds(trial: dict[str, int], only_assigned: bool = False) -> bool:
        for c in conditions:
            if only_assigned and not c.dims() <= trial.keys():
                continue
            if not _true(c, params, trial):
                return False
        for e in positive:
            if only_assigned and not e.dims() <= trial.keys():
                continue
            value = _value(e, params, trial)
            if value is None or value < 1 or value > MAX_EXTENT:
                return False
        return True

    candidates = CANDIDATE_SIZES + _divisible_sizes(conditions)
    # then every size up to 2,048 (conditions with offsets: `(token - 1) // 2 % 3 == 0`)
    every = tuple(n for n in range(1, 2049) if n not in candidates)
    for size in candidates + every:  # one size for every non-batch name: `height` = `width` reads best
        trial = {**sizes, **{name: size for name in others}}
        if holds(trial):
            return trial
    # name by name, depth first, a condition checked as soon as the names it reads have sizes
    order = sorted(batch) + others
    choices = {name: BATCH_CANDIDATES if name in batch else candidates + every for name in order}
    trials = 0

    def search(i: int, trial: dict[str, int]) -> dict[str, int] | None:
        nonlocal trials
        if i == len(order):
            return dict(trial)
        for size in choices[order[i]]:
            trials += 1
            if trials > MAX_SIZE_TRIALS:
                return None
            trial[order[i]] = size
            if holds(trial, only_assigned=True):
                found = search(i + 1, trial)
                if found is not None:
                    return found
            del trial[order[i]]
        return None

    found = search(0, {})
    if found is None:
        # name the conditions that no common size satisfies (else all): those are the culprits
        commons = [{**sizes, **{name: size for name in others}} for size in CANDIDATE_SIZES]
        stuck = [a for a in requires if not any(_true(a.condition, params, trial) for trial in commons)]
        wanted = "; ".join(f"`{a.condition.render()}` ({a.message})" for a in stuck or requires) or \
            f"every run-time size between 1 and {MAX_EXTENT}"
        raise SizeError(f"no sizes of the run-time dimensions {', '.join(others or order)} satisfy {wanted}: "
                        f"tried {', '.join(map(str, CANDIDATE_SIZES))} and every size up to 2048")
    return found


def _divisible_sizes(conditions) -> tuple[int, ...]:
    """Sizes that nested divisions need (`token // 3 // 3 % 3 == 0` wants 27): the product, over
    each divisor, of its most uses in one condition, and a few multiples of it."""
    most: dict[int, int] = {}
    for c in conditions:
        counts: dict[int, int] = {}
        _divisors(c.tree, counts)
        for k, n in counts.items():
            most[k] = max(most.get(k, 0), n)
    product = 1
    for k, n in most.items():
        product *= k**n
    if product == 1 or product > 2**40:
        return ()
    return tuple(product * m for m in (1, 2, 3, 4, 8) if product * m not in CANDIDATE_SIZES)


def _divisors(tree: tuple, counts: dict[int, int]) -> None:
    if tree[0] in ("//", "%") and tree[2][0] == "c" and isinstance(tree[2][1], int) and tree[2][1] > 1:
        counts[tree[2][1]] = counts.get(tree[2][1], 0) + 1
    if tree[0] not in ("c", "p", "d"):
        for sub in tree[1:]:
            _divisors(sub, counts)


def _value(s, params: dict[str, Any], sizes: dict[str, int]) -> Any:
    """`s` evaluated, or None where it reads a name without a value (or divides by zero)."""
    try:
        return s.evaluate(params, sizes)
    except (KeyError, ZeroDivisionError, TypeError, ValueError):
        return None


def _true(condition, params: dict[str, Any], sizes: dict[str, int]) -> bool:
    value = _value(condition, params, sizes)
    return value is not None and bool(value)
