"""Hostile and careless specs (issue 12, items 1, 2, 4, 6, 7, 9-12, 15): each gives one
SpecError line naming the key, quickly, or loads into a spec that does what it says."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest

from automnist.errors import SpecError
from automnist.runs import check_run_name, default_run_name, run_dir
from automnist.spec import load_spec, parse_spec


def _bomb(levels: int = 9, width: int = 9) -> bytes:
    lines = ["a0: &a0 [" + ", ".join(['"lol"'] * width) + "]"]
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]")
    return ("\n".join(lines) + "\n").encode()


def _load(tmp_path: Path, content: bytes, name: str = "s.yaml"):
    path = tmp_path / name
    path.write_bytes(content)
    return load_spec(path)


def _error(tmp_path: Path, content: bytes) -> str:
    with pytest.raises(SpecError) as info:
        _load(tmp_path, content)
    message = str(info.value)
    assert "\n" not in message and len(message) <= 500
    return message


BIG = b"9" * 400
CASES = {
    # 1: alias bombs, wherever they sit
    "bomb-top": (_bomb(), "more than 5000 values once aliases are expanded"),
    "bomb-data-dir": (_bomb() + b"data: {data_dir: *a8}\n", "more than 5000 values"),
    "bomb-when": (_bomb() + b"params: {dropout: {float: [0, 0.5], when: {units: *a8}}}\n", "more than 5000 values"),
    "bomb-noise-seed": (_bomb() + b"data: {noise: {seed: *a8}}\n", "more than 5000 values"),
    "alias-cycle": (b"name: &a [*a]\n", "a cycle"),
    # 2: not UTF-8
    "latin-1": ("name: caf\xe9\n".encode("latin-1"), "line 1: not UTF-8 text: byte 0xe9 at offset 9"),
    "utf-16": ("name: t\n".encode("utf-16"), "not UTF-8 text: byte 0xff at offset 0"),
    "stray-byte": (b"name: t\nmodel: cnn\x91\n", "line 2: not UTF-8 text: byte 0x91"),
    # 4: seeds
    "search-seed-negative": (b"search: {seed: -1}\n", "search.seed: must be an integer from 0 to 4294967295, got -1"),
    "split-seed-2**32": (b"data: {split_seed: 4294967296}\n", "data.split_seed: must be an integer from 0 to 4294967295"),
    "noise-seed": (b"data: {noise: {seed: 4294967295}}\n", "data.noise.seed: must be an integer from 0 to 4294967294"),
    # 7: circular conditions
    "circular-when": (b"params:\n  dropout: {float: [0, 0.5], step: 0.1, when: {units: 64}}\n"
                      b"  units: {choice: [64, 128], when: {dropout: 0.1}}\n",
                      "params.dropout.when: circular condition: dropout -> units -> dropout"),
    "self-when": (b"params: {units: {choice: [64, 128], when: {units: 64}}}\n", "cannot depend on itself"),
    # 9: huge numbers
    "int-10**400": (b"params: {units: " + BIG + b"}\n", "params.units: integer too large: 400 digits"),
    "int-5000-digits": (b"search: {max_trials: " + b"9" * 5000 + b"}\n", "search.max_trials: integer too large"),
    "float-range-10**310": (b"params: {learning_rate: {float: [0.001, 1" + b"0" * 310 + b"]}}\n",
                            "params.learning_rate.float[1]: integer too large"),
    "batch-size-10**18": (b"params: {batch_size: 1000000000000000000}\n",
                          "params.batch_size: must be an integer from 1 to 1048576"),
    "units-range-10**18": (b"params: {units: {int: [1, 1000000000000000000]}}\n", "params.units.high: must be"),
    "max-trials-10**12": (b"search: {max_trials: 1000000000000}\n", "search.max_trials: must be an integer from 1 to"),
    "cv-10**6": (b"search: {cv: 1000000}\n", "search.cv: must be null or an integer from 2 to 100"),
    "epochs-10**9": (b"search: {epochs: 1000000000}\n", "search.epochs: must be an integer from 1 to 100000"),
    "filters-10**6": (b"params: {filters: [32, 1000000]}\n", "params.filters: must be an integer from 1 to 16384"),
    "subset-10**15": (b"data: {subset: 1000000000000000}\n", "data.subset: must be null or an integer from 20"),
    "time-budget-inf": (b"search: {time_budget: .inf}\n", "search.time_budget: must be a positive number"),
    # 10: deep nesting, flow and block style
    "deep-flow": (b"description: " + b"[" * 1000 + b"]" * 1000 + b"\n", "nested more than 32 levels deep"),
    "deep-block": (b"".join(b"  " * i + b"k:\n" for i in range(200)), "nested more than 32 levels deep"),
    # 11: non-JSON values, checked before anything is serialised
    "default-date": (b"params: {units: {choice: [64, 128], default: 2020-01-01}}\n",
                     "params.units.default: a date is not allowed in a spec"),
    "default-binary": (b"params: {units: {choice: [64, 128], default: !!binary aGVsbG8=}}\n",
                       "params.units.default: !!binary data is not allowed"),
    "default-set": (b"params: {units: {choice: [64, 128], default: !!set {a, b}}}\n",
                    "params.units.default: a !!set is not allowed"),
    "python-tag": (b"name: !!python/object:os.system {}\n", "name: a value tagged tag:yaml.org,2002:python"),
    # 12: settings that would do nothing
    "when-banana": (b"params: {leaky_relu_slope: {float: [0.01, 0.3], when: {activation: banana}}}\n",
                    "params.leaky_relu_slope.when.activation: can never hold"),
    "when-not-a-choice": (b"params:\n  activation: {choice: [relu, elu]}\n"
                          b"  leaky_relu_slope: {float: [0.01, 0.3], when: {activation: leaky_relu}}\n",
                          "params.leaky_relu_slope.when.activation: can never hold"),
    "filters-5-of-2": (b"params: {conv_layers: 2, filters_5: 64}\n", "params.filters_5: sets layer 5, but conv_layers is at most 2"),
    "units-3-of-choice": (b"params: {dense_layers: {choice: [1, 2]}, units_3: 64}\n", "params.units_3: sets layer 3"),
    "filters-01": (b"params: {filters_01: 64}\n", "params.filters_01: unknown hyperparameter"),
    "filters-1-mlp": (b"model: mlp\nparams: {filters_1: 64}\n", "params.filters_1: is a convolutional hyperparameter"),
    "conv-layers-0": (b"params: {conv_layers: 0}\n", "params.conv_layers: a cnn needs at least 1 conv block"),
    "conv-layers-choice-0": (b"params: {conv_layers: {choice: [0, 1]}}\n", "params.conv_layers.choice: a cnn needs"),
    "search-list": (b"search: []\n", "search: must be a mapping, got []"),
    "params-list": (b"params: []\n", "params: must be a mapping of hyperparameter names, got []"),
    "data-list": (b"data: []\n", "data: must be a mapping or a data set name"),
    "name-false": (b"name: false\n", "name: must be a non-empty text, got False"),
    "name-empty": (b"name: ''\n", "name: must be a non-empty text"),
    "description-list": (b"description: [a, b]\n", "description: must be text"),
    "duplicate-key": (b"name: a\nname: b\n", "name: duplicate key"),
    # 15: unencodable text
    "surrogate-name": (b'name: "\\ud800"\n', "name: text cannot be written as UTF-8: character U+D800"),
    "surrogate-key": (b'params: {"\\udcff": 1}\n', "text cannot be written as UTF-8"),
    # other hostile bytes
    "nul-byte": (b"name: t\x00\n", "not a text file: contains a NUL byte"),
    "huge-file": (b"# " + b"x" * 256_001 + b"\n", "file too large for a spec: more than 256000 bytes"),
    # work bounded before PyYAML's scanner and composer do it: many values, many open brackets
    "long-flat-list": (b"description: [" + b"1," * 100_000 + b"1]\n", "line 1: more than 5000 values"),
    "many-open-brackets": (b"description: " + b"[" * 200_000 + b"\n", "line 1: nested more than 32 levels deep"),
}


@pytest.mark.parametrize(("content", "expected"), list(CASES.values()), ids=list(CASES))
def test_bad_spec_is_one_line_error(tmp_path: Path, content: bytes, expected: str) -> None:
    assert expected in _error(tmp_path, content)


def test_long_value_is_cut_in_the_message(tmp_path: Path) -> None:
    message = _error(tmp_path, b"model: " + b"x" * 100_000 + b"\n")
    assert message.startswith(f"{tmp_path / 's.yaml'}: model: must be one of cnn, mlp, got 'xxx")
    assert len(message) < 300


def test_parse_spec_from_python_values_checks_them_before_serialising() -> None:
    with pytest.raises(SpecError, match=r"params.units.default: a date is not allowed"):
        parse_spec({"params": {"units": {"choice": [64, 128], "default": datetime.date(2020, 1, 1)}}})
    with pytest.raises(SpecError, match=r"params.units: integer too large"):
        parse_spec({"params": {"units": 10**400}})
    with pytest.raises(SpecError, match=r"name: text cannot be written as UTF-8"):
        parse_spec({"name": "\ud800"})
    deep: dict = {}
    node = deep
    for _ in range(1000):
        node["k"] = {}
        node = node["k"]
    with pytest.raises(SpecError, match="nested more than 32 levels deep"):
        parse_spec({"description": deep})


def test_conditions_and_overrides_that_can_hold_are_kept(tmp_path: Path) -> None:
    spec = _load(tmp_path, b"name: ok\nparams:\n  activation: {choice: [relu, leaky_relu]}\n"
                           b"  leaky_relu_slope: {float: [0.01, 0.3], when: {activation: leaky_relu}}\n"
                           b"  conv_layers: {choice: [1, 3]}\n  filters_3: 64\n"
                           b"  dense_layers: 2\n  units_2: 32\n"
                           b"search: {seed: 4294967295, max_trials: 100000, cv: 100}\n"
                           b"data: {split_seed: 0, noise: {seed: 4294967294}}\n")
    assert spec.search.seed == 2**32 - 1 and spec.data.noise.seed == 2**32 - 2
    assert [p.name for p in spec.params] == ["activation", "leaky_relu_slope", "conv_layers", "filters_3",
                                             "dense_layers", "units_2"]
    # an explicit null still means "the default"
    assert _load(tmp_path, b"name: n\nsearch: null\nparams: null\n").search.strategy == "random"


def test_every_real_spec_still_loads() -> None:
    root = Path(__file__).resolve().parents[1]
    for path in sorted((root / "search_spaces").glob("*.yaml")):
        assert load_spec(path).name


# --------------------------------------------------------------------------- run names (item 6)


@pytest.mark.parametrize("name", ["x/y", "x y", "..", ".", "", "-x", ".hidden", "a" * 101, "é", "x\ny", "run\x00"])
def test_bad_run_names_are_refused(name: str) -> None:
    with pytest.raises(SpecError, match=r"run name: must be 1 to 100 characters: ASCII letters, digits"):
        check_run_name(name)


def test_valid_names_are_their_own_folder_and_never_share_one(tmp_path: Path) -> None:
    names = ["x_y", "x-y", "x.y", "X_y", "run", "a" * 100, "0"]
    folders = [run_dir(tmp_path, check_run_name(n)) for n in names]
    assert [f.name for f in folders] == names
    # names from before the rule get distinct folders too, never a valid name's folder
    legacy = ["x/y", "x y", "..", ".", "x_y "]
    legacy_folders = {run_dir(tmp_path, n) for n in legacy}
    assert len(legacy_folders) == len(legacy) and not legacy_folders & set(folders)
    assert all(f.parent == tmp_path and f.name not in (".", "..") for f in legacy_folders)


@pytest.mark.parametrize("spec_name", ["my spec/v2", "..", "Ünïcode ∑", "x" * 300, "-lead", "ok_name"])
def test_default_run_names_follow_the_rule(spec_name: str) -> None:
    spec = parse_spec({"name": spec_name})
    for kind, unique in ((None, False), ("lr_find", True)):
        name = default_run_name(spec, kind, unique=unique)
        assert check_run_name(name) == name and len(name) <= 100
