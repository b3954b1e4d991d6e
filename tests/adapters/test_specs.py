"""The one description per adapter (``adapters/specs.py``) agrees with what its builder builds."""
import warnings

import pytest
import torch

import adapters
from adapters.specs import BUILT_IN, FROM_FILE, MODULE, SPECS, AdapterSpec, SizeRequirements

PLUS = sorted(n for n, s in SPECS.items() if s.condition == MODULE)
FIXED = sorted(n for n in SPECS if not n.startswith("auto"))  # built without a model file


def test_every_plus_names_a_module_path_or_a_flag():
    assert PLUS == ["codeformer+", "daefr+", "difface+", "minires+", "nu2net+", "puienet+"]
    assert {n: SPECS[n].condition for n in SPECS if SPECS[n].condition not in (None, MODULE)} == {
        "iqpfr": BUILT_IN, "iqpir": BUILT_IN, "auto+": FROM_FILE}
    assert all(SPECS[n].is_plus for n in PLUS)


@pytest.mark.parametrize("name", PLUS)
def test_plus_injects_at_the_specs_module(name):
    """The spec's path is a real submodule of ``net`` and the builder injects there (tiny and released)."""
    entry = adapters.spec(name)
    model = adapters.create(name, tiny=True)
    assert isinstance(model.net.get_submodule(entry.condition_at), torch.nn.Module)
    assert [s.at for s in model.injections] == [entry.condition_at]
    with torch.device("meta"):  # the released configuration, without memory
        released = adapters.create(name)
    assert [s.at for s in released.injections] == [entry.condition_at]
    assert released.condition_shape() == entry.condition_shape  # the docs' shape is the built one
    assert released.embeddings()[0].weight.shape[1] == torch.Size(entry.condition_shape).numel()


@pytest.mark.parametrize("name", sorted(SPECS))
def test_level_flag_matches_the_built_model(name):
    entry = adapters.spec(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = adapters.create(name, tiny=True)
    assert model.takes_level is entry.takes_level
    assert model.is_conditioned is (entry.condition in (MODULE, FROM_FILE))  # built in: no "+" embedding


@pytest.mark.parametrize("name", FIXED)
def test_released_build_has_the_specs_facts(name):
    entry = adapters.spec(name)
    with torch.device("meta"):
        model = adapters.create(name)
    assert (model.task, model.native_size) == (entry.task, entry.native_size)
    assert model.controls == (entry.controls or ())
    assert model.export_refused == entry.export_refused


@pytest.mark.parametrize("name, least, multiple", [("puienet", 16, 8), ("nu2net", 16, 16)])
def test_network_size_is_the_specs_requirement(name, least, multiple):
    import importlib

    module = importlib.import_module(f"adapters.{name}")
    assert SPECS[name].size_requirements == SizeRequirements(least, multiple)
    assert module.network_size(least - 1, 3 * multiple + 1) == (least, 3 * multiple)
    model = adapters.create(name, tiny=True)
    x = torch.rand(1, 3, 3 * multiple + 5, least + multiple + 1)
    assert model.enhance(x).shape[-2:] == (3 * multiple, least + multiple)


def test_size_requirements():
    req = SizeRequirements(16, 8)
    assert tuple(req) == (16, 8, False) and not req.none and SizeRequirements().none
    assert req.network_size(17, 23) == (16, 16) and req.network_size(41, 70) == (40, 64)
    assert SizeRequirements(0, 4, square=True).network_size(9, 13) == (8, 8)
    for bad in ({"minimum": -1}, {"multiple_of": 0}, {"multiple_of": 2.0}, {"minimum": True}):
        with pytest.raises(ValueError, match="SizeRequirements"):
            SizeRequirements(**bad)


def test_spec_refuses_free_text_injection_points():
    with pytest.raises(ValueError, match="dotted module path"):
        AdapterSpec("x+", "m:f", base="x", condition_at="encoder.blocks.<last>")
    with pytest.raises(ValueError, match="needs condition_at"):
        AdapterSpec("x+", "m:f", condition=MODULE)
    with pytest.raises(ValueError, match="takes none"):
        AdapterSpec("x+", "m:f", condition_at="encoder", condition=BUILT_IN)
    with pytest.raises(ValueError, match="condition must be one of"):
        AdapterSpec("x", "m:f", condition="per family")
    assert AdapterSpec("x+", "m:f", condition_at="body.3.conv").condition == MODULE


def test_codeformer_plus_mode_option_and_saved_folder(tmp_path):
    """The generic "+" builder keeps codeformer+'s ``mode`` option, saved in config.json and loaded back."""
    torch.manual_seed(0)
    model = adapters.create("codeformer+", tiny=True, mode="adain")
    assert model.options["mode"] == "adain" and model.injections[0].mode == "adain"
    assert "mode" not in adapters.create("codeformer+", tiny=True).options
    with torch.no_grad():
        model.score_embedding.weight.normal_()
    again = adapters.create("codeformer+", checkpoint=model.save_pretrained(tmp_path / "cf"))
    x = torch.rand(1, 3, 64, 64)
    assert again.injections[0].mode == "adain" and torch.equal(again(x, score=2), model(x, score=2))
    with pytest.raises(Exception, match="mode"):
        adapters.create("daefr+", tiny=True, mode="adain")  # a mode only where the builder offers one
