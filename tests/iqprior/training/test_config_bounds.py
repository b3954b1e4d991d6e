"""Found by fuzzing: deep or alias-expanding YAML configs hung or escaped as RecursionError."""
import pytest

from iqprior.training.config import load_config


@pytest.mark.parametrize("text", [
    "train: " + "[" * 30_000 + "]" * 30_000,                      # quadratic scanner, recursive composer
    "train:\n" + "".join(" " * (i + 1) + f"k{i}:\n" for i in range(200)),  # deep block nesting
    "a: &a [1, 1]\n" + "".join(f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}]\n"
                               for p, c in zip("abcdefghi", "bcdefghij")) + "train: {lr_milestones: *j}\n",
])
def test_hostile_yaml_is_one_value_error(tmp_path, text):
    p = tmp_path / "c.yaml"
    p.write_text(text)
    with pytest.raises(ValueError) as err:
        load_config(p)
    assert "\n" not in str(err.value)


def test_bundled_configs_still_load():
    assert load_config("tiny").train.batch_size >= 1
