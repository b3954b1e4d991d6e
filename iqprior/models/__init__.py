"""Networks of the library (the CodeFormer VQGAN, IQPFR). Import submodules explicitly."""
