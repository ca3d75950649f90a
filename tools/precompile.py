"""Byte-compile the venv at setup: every package but aws-cdk-lib, and of aws-cdk-lib the modules this code imports.

pip compiles serially and all of aws-cdk-lib (176 MB of Python in ~680 modules, about 55 of `make setup`'s 90
CPU-seconds), of which the construct, its tests and a synth import a few dozen; `make setup` installs with
--no-compile and runs this instead. A module left out still works: Python compiles it when it is imported.
"""

from __future__ import annotations

import compileall
import os
import re
import subprocess
import sys
import sysconfig
import warnings
from pathlib import Path

# What imports aws-cdk-lib here: the construct in a stack (its props' type checks load more modules), the tests'
# assertions, cdk-nag's rules.
PROBE = """
import sys
import aws_cdk, aws_cdk.assertions, cdk_nag
from appstream_image_provider import AppStreamImage, ImageSource
AppStreamImage(aws_cdk.Stack(aws_cdk.App(), "Probe"), "Image", image_name="probe", source=ImageSource.copy_of("base"))
print("\\n".join(m.__file__ for m in list(sys.modules.values()) if m.__name__.startswith("aws_cdk") and m.__file__))
"""


def _cdk_modules_imported() -> list[str]:
    probe = subprocess.run(  # noqa: S603 - this interpreter and a fixed script
        [sys.executable, "-W", "ignore", "-B", "-c", PROBE], check=True, capture_output=True, text=True, timeout=300
    )
    return probe.stdout.split()


def main() -> int:
    os.environ["PYTHONWARNINGS"] = "ignore::SyntaxWarning"  # other packages' invalid escapes (the workers too)
    warnings.simplefilter("ignore", SyntaxWarning)
    site = Path(sysconfig.get_paths()["purelib"])
    everything_else = compileall.compile_dir(site, quiet=1, workers=0, rx=re.compile(r"/aws_cdk/"))
    imported = [compileall.compile_file(path, quiet=1) for path in _cdk_modules_imported()]  # all, even after a failure
    return 0 if everything_else and all(imported) else 1


if __name__ == "__main__":
    sys.exit(main())
