"""A whole spec: :class:`SearchSpec`, read from a file or a mapping and checked across sections.

Raw YAML dicts never travel past :mod:`automnist.spec`: :func:`load_spec` /
:func:`parse_spec` return a :class:`SearchSpec`, and every rule violation raises
:class:`~automnist.errors.SpecError` naming the file, the key path, the rule and the value.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from automnist.errors import SpecError
from automnist.records import plain_value
from automnist.spec.model import (
    AUTO_ENSEMBLE,
    ChoiceParam,
    DataSpec,
    DenoiseSpec,
    FinalSpec,
    FixedParam,
    FloatParam,
    Objective,
    Param,
    SearchConfig,
    param_default,
)
from automnist.spec.consistency import check_consistency
from automnist.spec.parse import (
    check_keys,
    parse_data,
    parse_denoise,
    parse_final,
    parse_objective,
    parse_params,
    parse_search,
)
from automnist.spec.raw import check_plain
from automnist.spec.values import short_repr
from automnist.spec.vocabulary import CONV_PARAMS, DEFAULTS, LR_FROM_LR_FIND, MODELS, TOP_KEYS
from automnist.spec.yaml_reader import MAX_BYTES, read_yaml

__all__ = ["SearchSpec", "load_spec", "parse_spec"]


@dataclass(frozen=True)
class SearchSpec:
    """A validated search-space spec.

    Attributes
    ----------
    name : str
        The spec's name, used for default run names.
    model : {"cnn", "mlp"}
    data, search, objective :
        Data set, strategy/budget and objective.
    final : FinalSpec
        What is kept after the search (refit of the best configuration, ensemble).
    params : tuple of Param
        Every hyperparameter mentioned in the spec, in file order.
    source : str
        The file it came from (or ``"<dict>"``); used in error messages.
    """

    name: str
    model: str = "cnn"
    description: str = ""
    data: DataSpec = field(default_factory=DataSpec)
    params: tuple[Param, ...] = ()
    search: SearchConfig = field(default_factory=SearchConfig)
    objective: Objective = field(default_factory=Objective)
    denoise: DenoiseSpec | None = None
    final: FinalSpec = field(default_factory=FinalSpec)
    source: str = "<dict>"

    # -- views
    @property
    def param_map(self) -> dict[str, Param]:
        """The parameters by name."""
        return {p.name: p for p in self.params}

    @property
    def tunable(self) -> tuple[Param, ...]:
        """The searched hyperparameters (everything but fixed ones)."""
        return tuple(p for p in self.params if not isinstance(p, FixedParam))

    def fixed_values(self) -> dict[str, Any]:
        """Builder defaults overlaid with the spec's fixed values."""
        values = {k: plain_value(v) for k, v in DEFAULTS.items()}
        for p in self.params:
            if isinstance(p, FixedParam):
                values[p.name] = plain_value(p.value)
        return values

    def default_values(self) -> dict[str, Any]:
        """The baseline configuration: fixed values plus each searched one's default
        (its ``default``, else the first choice, else the low end of its range).

        :func:`automnist.space.complete_config` fills a partial configuration.
        """
        values = self.fixed_values()
        for p in self.tunable:
            values[p.name] = plain_value(param_default(p))
        return values

    def to_dict(self) -> dict[str, Any]:
        """The canonical mapping; ``parse_spec(spec.to_dict())`` gives an equal spec."""
        data = {k: plain_value(v) for k, v in dataclasses.asdict(self.data).items() if k != "noise"}
        if self.data.image_size is None:  # only when set, so other specs keep their hash
            del data["image_size"]
        else:
            data["image_size"] = list(self.data.image_size)
        if self.data.noise is not None:
            noise = dataclasses.asdict(self.data.noise)
            noise["on"] = list(noise["on"])
            data["noise"] = noise
        out = {
            "name": self.name,
            "model": self.model,
            "description": self.description,
            "data": data,
            "params": {p.name: p.to_config() for p in self.params},
            # options left unset are left out, so specs that do not use them keep their hash
            "search": {k: v for k, v in dataclasses.asdict(self.search).items()
                       if k not in ("chain_alpha", "early_stopping") or v is not None},
            "objective": dataclasses.asdict(self.objective),
        }
        if self.denoise is not None:  # only when set, so other specs keep their hash
            denoise = dataclasses.asdict(self.denoise)
            denoise["filters"] = list(denoise["filters"])
            out["denoise"] = denoise
        if self.final != FinalSpec():
            out["final"] = dataclasses.asdict(self.final)
        return out

    @property
    def refits(self) -> bool:
        """Whether the best configuration is refit on training + validation data after the search."""
        return self.search.strategy == "auto" if self.final.refit is None else self.final.refit

    @property
    def ensemble_size(self) -> int:
        """How many of the top trials' models the ensemble chooses from (1: no ensemble):
        ``final.ensemble``, by default :data:`AUTO_ENSEMBLE` for ``strategy: auto``."""
        if self.final.ensemble is not None:
            return self.final.ensemble
        return AUTO_ENSEMBLE if self.search.strategy == "auto" else 1

    @property
    def hash(self) -> str:
        """A short content hash of the canonical spec (ignores comments, key order)."""
        text = json.dumps(self.to_dict(), sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def replace(self, **overrides: Any) -> SearchSpec:
        """A copy with ``search.*``, ``data.*`` or top-level fields overridden.

        ``spec.replace(strategy="grid", max_trials=3, dataset="digits", subset=500)``.
        ``None`` values are ignored, so CLI flags can be passed straight through.
        ``denoise_epochs`` sets ``denoise.epochs`` (the spec must have ``denoise:``).
        Overrides are validated like the file itself.
        """
        raw = self.to_dict()
        search_keys = {f.name for f in dataclasses.fields(SearchConfig)}
        data_keys = {f.name for f in dataclasses.fields(DataSpec)}
        for key, value in overrides.items():
            if value is None:
                continue
            if key == "denoise_epochs":
                if "denoise" not in raw:
                    raise SpecError(self.source, "denoise.epochs", "the spec has no denoise: section to override")
                raw["denoise"]["epochs"] = value
            elif key in search_keys:
                raw["search"][key] = value
            elif key in data_keys:
                raw["data"][key] = value
            elif key in ("name", "model", "description", "objective"):
                raw[key] = value
            else:
                raise SpecError(self.source, key, "unknown override")
        return parse_spec(raw, source=self.source)


def load_spec(path: str | Path) -> SearchSpec:
    """Read and validate a YAML spec file.

    Raises
    ------
    SpecError
        If the file is missing, is not valid YAML, or breaks a rule.
    """
    path = Path(path)
    source = str(path)
    try:
        with path.open("rb") as fh:
            data = fh.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise SpecError(source, "", "file not found") from None
    except OSError as exc:
        raise SpecError(source, "", f"cannot read file ({exc.strerror})") from None
    raw = read_yaml(data, source)
    if raw is None:
        raise SpecError(source, "", "the file is empty")
    spec = parse_spec(raw, source=source)
    if not spec.name:
        spec = dataclasses.replace(spec, name=path.stem)
    return spec


def parse_spec(raw: Any, source: str = "<dict>") -> SearchSpec:
    """Validate a mapping (parsed YAML) into a :class:`SearchSpec`."""
    if not isinstance(raw, Mapping):
        raise SpecError(source, "", f"a spec must be a mapping, got {type(raw).__name__}")
    check_plain(raw, source)
    check_keys(raw, TOP_KEYS, source, "")
    name = _optional(raw, "name", "")
    if not isinstance(name, str) or ("name" in raw and not name.strip()):
        raise SpecError(source, "name", f"must be a non-empty text, got {short_repr(name)}")
    model = raw.get("model", "cnn")
    if model not in MODELS:
        raise SpecError(source, "model", f"must be one of {', '.join(MODELS)}, got {short_repr(model)}")
    description = _optional(raw, "description", "")
    if not isinstance(description, str):
        raise SpecError(source, "description", f"must be text, got {short_repr(description)}")
    data = parse_data(_optional(raw, "data", {}), source)
    params = parse_params(_optional(raw, "params", {}), source)
    search = parse_search(_optional(raw, "search", {}), source)
    objective = parse_objective(raw.get("objective", "val_accuracy"), source)
    denoise = parse_denoise(raw.get("denoise"), source)
    final = parse_final(raw.get("final"), source)
    spec = SearchSpec(
        name=name,
        model=model,
        description=str(description).strip(),
        data=data,
        params=params,
        search=search,
        objective=objective,
        denoise=denoise,
        final=final,
        source=source,
    )
    check_consistency(spec.model, spec.params, source)
    _check_cross(spec)
    return spec


def _optional(raw: Mapping[str, Any], key: str, default: Any) -> Any:
    """``raw[key]``, or ``default`` when the key is absent or null (an empty list stays a list, and is refused)."""
    value = raw.get(key)
    return default if value is None else value


def _check_cross(spec: SearchSpec) -> None:
    if spec.model == "mlp":
        for p in spec.tunable:
            if p.name in CONV_PARAMS:
                raise SpecError(spec.source, f"params.{p.name}", "is a convolutional hyperparameter; the mlp model has no conv layers")
    strategy = spec.search.strategy
    pmap = spec.param_map
    lr = pmap.get("learning_rate")
    if lr is not None and not isinstance(lr, FixedParam):
        values = lr.values if isinstance(lr, ChoiceParam) else ()
        if any(v == LR_FROM_LR_FIND for v in values):
            raise SpecError(spec.source, "params.learning_rate",
                            f"{short_repr(LR_FROM_LR_FIND)} is only allowed as the fixed value (learning_rate: {LR_FROM_LR_FIND})")
    if isinstance(lr, FixedParam) and isinstance(lr.value, Mapping):
        opt = pmap.get("optimizer")
        wanted = [DEFAULTS["optimizer"]] if opt is None else list(opt.values) if isinstance(opt, ChoiceParam) else [opt.value]
        missing = [o for o in wanted if isinstance(o, str) and o not in lr.value]
        if missing:
            raise SpecError(spec.source, "params.learning_rate",
                            f"the per-optimizer mapping has no learning rate for optimizer {short_repr(missing[0])}, got {short_repr(plain_value(lr.value))}")
    if spec.denoise is not None and spec.data.noise is None:
        raise SpecError(spec.source, "denoise",
                        "needs data.noise: the autoencoder learns to map noisy training images to the clean ones")
    if strategy == "sweep":
        for p in spec.tunable:
            if isinstance(p, FloatParam) and p.step is None:
                raise SpecError(spec.source, f"params.{p.name}",
                                "a sweep trains every value of each hyperparameter: give the float range a step or use choice")
    if strategy == "grid":
        for p in spec.tunable:
            if isinstance(p, FloatParam) and p.step is None:
                raise SpecError(spec.source, f"params.{p.name}",
                                "grid search needs discrete values: give a step or use choice")
    if strategy in ("sklearn-grid",):
        for p in spec.tunable:
            if isinstance(p, FloatParam) and p.step is None:
                raise SpecError(spec.source, f"params.{p.name}",
                                "sklearn-grid needs explicit values for a continuous range: give a step or use choice")
            if p.when:
                raise SpecError(spec.source, f"params.{p.name}.when",
                                "conditional parameters are not supported by scikit-learn strategies")
    if strategy in ("sklearn-random", "sklearn-halving"):
        for p in spec.tunable:
            if p.when:
                raise SpecError(spec.source, f"params.{p.name}.when",
                                "conditional parameters are not supported by scikit-learn strategies")
