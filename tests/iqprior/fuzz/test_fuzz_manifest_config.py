"""Fuzz the manifest reader and the training-config loader: records or skips / a config or one error."""
from __future__ import annotations

import json
import math
import warnings

from hypothesis import given, settings
from hypothesis import strategies as st

from iqprior.scoring.calibration import Calibration
from iqprior.scoring.manifest import raw_by_member, read_manifest, valid_record

FUZZ = settings.get_profile("iqprior-fuzz")

scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=True),
                    st.text(max_size=12))
json_values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                            st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                           max_leaves=20)
records = st.fixed_dictionaries(
    {}, optional={"path": st.one_of(st.text(max_size=12), json_values), "raw": st.one_of(
        st.dictionaries(st.sampled_from(["piqe", "entropy", "x"]), st.one_of(st.floats(), scalars), max_size=3),
        json_values),
        "score": st.one_of(st.floats(), scalars), "level": st.one_of(st.integers(-3, 12), scalars),
        "error": st.one_of(st.text(max_size=8), scalars)})


def _line(value) -> str:
    return json.dumps(value, allow_nan=True)


lines = st.one_of(
    records.map(_line), json_values.map(_line), st.text(max_size=80),
    st.integers(1, 50_000).map(lambda n: "[" * n + "]" * n),
    st.integers(1, 50_000).map(lambda n: '{"path": ' + "{\"a\": " * n + "1" + "}" * n + "}"),
)


@FUZZ
@given(st.lists(lines, max_size=12))
def test_manifest_lines_of_any_shape(bounded, tmp_path_factory, content):
    path = tmp_path_factory.mktemp("fuzz") / "m.jsonl"
    path.write_text("\n".join(content) + "\n", encoding="utf-8", errors="surrogatepass")
    counts: dict = {}
    with bounded("read_manifest"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        recs = read_manifest(path, counts=counts)
        raw = raw_by_member(recs)
    assert all(valid_record(r) for r in recs)
    with open(path, encoding="utf-8", errors="replace") as f:  # universal newlines, as the reader splits
        assert len(recs) + counts.get("skipped_lines", 0) == sum(1 for ln in f if ln.strip())
    for values in raw.values():
        assert all(math.isfinite(v) for v in values)
    if raw:  # whatever the manifest holds, a calibration from it is finite
        cal = Calibration.fit(raw)
        assert all(math.isfinite(m.min) and math.isfinite(m.max) for m in cal.members.values())


yaml_docs = st.one_of(
    st.text(max_size=200),
    st.builds(lambda v: json.dumps(v, allow_nan=True), st.dictionaries(
        st.sampled_from(["model", "data", "train", "stage", "x"]),
        st.one_of(json_values, st.dictionaries(st.sampled_from(["lr", "steps", "batch_size", "levels", "size",
                                                                  "betas", "lr_milestones", "root", "q"]),
                                               json_values, max_size=4)), max_size=4)),
    st.integers(1, 30_000).map(lambda n: "a: " + "[" * n + "]" * n),
    st.integers(1, 9).map(lambda n: "a: &a [1]\n" + "".join(f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, "
                                                            f"*{chr(97 + i)}]\n" for i in range(n))
                          + f"train: {{lr_milestones: *{chr(97 + n)}}}\n"),
)


@FUZZ
@given(yaml_docs)
def test_config_loader_gives_a_config_or_one_error(bounded, tmp_path_factory, text):
    from iqprior.training.config import TrainConfig, load_config

    path = tmp_path_factory.mktemp("fuzz") / "c.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    with bounded("load_config"):
        try:
            cfg = load_config(path)
        except (ValueError, TypeError) as e:
            assert str(e).strip() and "\n" not in str(e).strip(), repr(e)
            return
    assert isinstance(cfg, TrainConfig)


calibrations = st.one_of(
    json_values, st.text(max_size=60),
    st.fixed_dictionaries({"members": st.one_of(json_values, st.dictionaries(
        st.text(max_size=6), st.fixed_dictionaries({}, optional={
            "min": scalars, "max": scalars, "lower_better": scalars, "count": scalars}), max_size=3))},
        optional={"eps": scalars, "version": scalars}),
    st.integers(1, 50_000).map(lambda n: '{"members": ' + "[" * n + "]" * n + "}"),
)


@FUZZ
@given(calibrations)
def test_calibration_loader_gives_a_calibration_or_one_error(bounded, tmp_path_factory, value):
    path = tmp_path_factory.mktemp("fuzz") / "cal.json"
    path.write_text(value if isinstance(value, str) else json.dumps(value, allow_nan=True), encoding="utf-8",
                    errors="surrogatepass")
    with bounded("Calibration.load"):
        try:
            cal = Calibration.load(path)
        except ValueError as e:
            assert str(e).strip() and "\n" not in str(e).strip(), repr(e)
            return
    for m in cal.members.values():
        assert math.isfinite(m.min) and math.isfinite(m.max) and m.min <= m.max
    assert math.isfinite(cal.eps) and cal.eps > 0
