"""Networks of the library (the CodeFormer VQGAN, IQPFR) and the building blocks several networks share
(:mod:`iqprior.models.layers`). Import submodules explicitly."""
