"""``import iqprior, adapters`` stays light: no basicsr, facexlib, pyiqa or gradio until a model or the demo is built."""
import subprocess
import sys

HEAVY = ("basicsr", "facexlib", "pyiqa", "gradio")


def test_importing_the_packages_loads_no_heavy_dependency():
    code = ("import sys, iqprior, adapters; adapters.list_adapters(); adapters.spec('codeformer+'); "
            f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"imported at package import time: {out.stdout.strip()}"


def test_flag_checks_and_the_checkpoint_format_import_no_torch():
    """The CLI's argument checks sniff a --checkpoint with iqprior.checkpoint_format before torch is imported."""
    code = ("import sys, iqprior.argument_checks, iqprior.checkpoint_format, iqprior.file_hash; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", "importing the flag checks imported torch"
