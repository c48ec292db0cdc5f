"""``learning_rate: from_lr_find``: fill a spec's learning rate(s) from range tests, reusing
the newest stored test of the same spec and data set or running one now, and write a
spec file with the suggestions."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from automnist.data import Dataset
from automnist.errors import AutomnistError
from automnist.experiments.lr_find import lr_find, spec_optimizers
from automnist.experiments.lr_find_curve import RULE
from automnist.spec import LR_FROM_LR_FIND, FixedParam, SearchSpec, freeze, parse_spec
from automnist.store import Store

__all__ = ["uses_lr_find", "resolve_learning_rates", "write_spec"]


def uses_lr_find(spec: SearchSpec) -> bool:
    """Whether ``spec`` says ``learning_rate: from_lr_find``."""
    p = spec.param_map.get("learning_rate")
    return isinstance(p, FixedParam) and p.value == LR_FROM_LR_FIND


def _latest_suggestions(store: Store, spec: SearchSpec, optimizers: list[str]) -> dict[str, tuple[float, str]]:
    """Per optimizer, the newest finished lr_find run of the same spec name and data set
    with a suggestion for it: ``{optimizer: (learning rate, run)}``."""
    runs = store.runs_frame()
    if runs.empty:
        return {}
    runs = runs[(runs["kind"] == "lr_find") & (runs["spec_name"] == spec.name) & (runs["dataset"] == spec.data.dataset)
                & (runs["status"] == "finished")].sort_values("run_id", ascending=False)
    found: dict[str, tuple[float, str]] = {}
    for run in runs["run"]:
        for rec in store.get_trials(run):
            lr = rec.metrics.get("suggested_lr")
            if rec.trial_id in optimizers and rec.trial_id not in found and rec.status == "ok" \
                    and lr is not None and math.isfinite(lr):
                found[rec.trial_id] = (float(lr), run)
        if len(found) == len(optimizers):
            break
    return found


def resolve_learning_rates(
    spec: SearchSpec,
    *,
    store: Store,
    dataset: Dataset,
    results_dir: str | Path,
    run: str,
    progress: bool = False,
) -> tuple[SearchSpec, dict[str, Any]]:
    """Replace ``learning_rate: from_lr_find`` by suggested learning rates.

    For each of the spec's optimizers, the newest finished lr_find run in ``store`` for
    the same spec name and data set is reused; the missing optimizers are tested now
    (run ``<run>-lr_find``, stored).  One optimizer gives a number, several a mapping
    ``{optimizer: learning rate}``.

    Returns
    -------
    (SearchSpec, dict)
        The resolved spec and a note for the run's config: ``learning_rate``, ``runs``
        (lr_find run per optimizer), ``tested_now`` (optimizers tested for this run),
        ``rule``.

    Raises
    ------
    AutomnistError
        When the range test gives no suggestion for an optimizer.
    """
    if not uses_lr_find(spec):
        return spec, {}
    optimizers = spec_optimizers(spec)
    found = _latest_suggestions(store, spec, optimizers)
    missing = [o for o in optimizers if o not in found]
    if missing:
        name, n = f"{run}-lr_find", 2
        while store.get_run(name) is not None:
            name, n = f"{run}-lr_find-{n}", n + 1
        result = lr_find(spec, missing, dataset=dataset, results_dir=results_dir, run_name=name, progress=progress)
        for opt in missing:
            lr = result.suggestions.get(opt, math.nan)
            if not math.isfinite(lr):
                rec = next(r for r in result.records if r.trial_id == opt)
                why = rec.error or result.notes.get(opt, "the loss never fell")
                raise AutomnistError(
                    f"params.learning_rate: {LR_FROM_LR_FIND}: the range test (run {name!r}) gave no learning rate "
                    f"for optimizer {opt!r} ({why}); run `automnist lr-find` with other --min-lr/--max-lr "
                    f"or give learning_rate a number"
                )
            found[opt] = (float(f"{lr:.3g}"), name)
    lrs = {o: found[o][0] for o in optimizers}
    value: Any = lrs[optimizers[0]] if len(optimizers) == 1 else lrs
    params = tuple(FixedParam("learning_rate", freeze(value)) if p.name == "learning_rate" else p
                   for p in spec.params)
    note = {"learning_rate": value, "runs": {o: found[o][1] for o in optimizers}, "tested_now": missing,
            "rule": RULE}
    return dataclasses.replace(spec, params=params), note


def write_spec(spec: SearchSpec, suggestions: Mapping[str, float], out: str | Path, *,
               run: str | None = None) -> Path:
    """Write a copy of ``spec`` with the suggested learning rate(s) filled in.

    One optimizer (fixed ``optimizer``) gets ``learning_rate: <number>``; a choice over
    optimizers gets the per-optimizer mapping ``learning_rate: {adam: ..., sgd: ...}``.
    A header comment lists every suggestion (also those of optimizers the spec does not
    use).  Comments of the original file are not kept (the spec is rewritten from its
    parsed form).

    Raises
    ------
    AutomnistError
        When there is no suggestion for one of the spec's optimizers.
    """
    import yaml

    wanted = spec_optimizers(spec)
    usable = {o: float(f"{lr:.3g}") for o, lr in suggestions.items() if lr is not None and math.isfinite(lr)}
    missing = [o for o in wanted if o not in usable]
    if missing:
        raise AutomnistError(
            f"--write-spec: no suggested learning rate for the spec's optimizer {missing[0]!r}; "
            f"test it too (--optimizers {','.join(wanted)})"
        )
    value: Any = usable[wanted[0]] if len(wanted) == 1 else {o: usable[o] for o in wanted}
    raw = spec.to_dict()
    raw["params"]["learning_rate"] = value
    parse_spec(raw, source=str(out))  # what we write must load
    listed = ", ".join(f"{o} {lr:.3g}" for o, lr in suggestions.items() if lr is not None and math.isfinite(lr))
    header = [
        f"# Written by `automnist lr-find` from {spec.source}" + (f" (run {run})" if run else "") + ".",
        f"# Suggested learning rates: {listed or 'none'}.",
        f"# Rule: {RULE}.",
    ]
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(header) + "\n" + yaml.safe_dump(raw, sort_keys=False, default_flow_style=None),
                    encoding="utf-8")
    return path
