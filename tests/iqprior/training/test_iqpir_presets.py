"""The bundled ``iqpir_stage1|2`` presets hold the authors' released training values; the paper's stay default."""
from __future__ import annotations

from iqprior.data.degradations import DegradationConfig
from iqprior.models.iqpfr.config import IQPFRConfig
from iqprior.training.config import load_config


def test_released_stage1_values():
    c = load_config("iqpir_stage1")
    assert c.stage == 1
    assert (c.model.alpha, c.model.hq_threshold) == (0.8, 0.7)   # aesthetic_weight, aesthetic_threshold
    t = c.train
    assert (t.gan_type, t.lr, t.lr_d, t.disc_start, t.steps, t.ema_decay) == ("hinge", 7e-5, 7e-5, 30001, 1600000,
                                                                             0.995)


def test_released_stage2_values():
    c = load_config("iqpir_stage2")
    assert c.stage == 2 and c.model.head == "joint" and c.model.alpha == 0.8 and c.model.condition == "add"
    d = c.data.degradation_config()
    assert (d.blur_sigma, d.downsample, d.noise, d.jpeg) == ((1, 15), (4, 30), (0, 20), (30, 79))
    t = c.train
    assert (t.lr, t.lr_milestones, t.steps, t.feat_weight, t.index_weight, t.quality_weight) == \
        (1e-4, (400000, 450000), 250000, 1.0, 0.5, 0.0)


def test_paper_values_stay_the_defaults():
    m = IQPFRConfig()
    assert (m.alpha, m.hq_threshold, m.head, m.connect_list, m.adain_lookup) == (1.0, 0.9, "split", (), False)
    d = DegradationConfig()
    assert (d.downsample, d.jpeg) == ((1.0, 30.0), (30.0, 90.0))
    s1, s2 = load_config("iqpfr_stage1"), load_config("iqpfr_stage2")
    assert (s1.model.alpha, s1.model.hq_threshold, s1.train.gan_type) == (1.0, 0.9, "vanilla")
    assert s2.data.degradation_config() == DegradationConfig()
