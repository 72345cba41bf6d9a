"""Print the Python versions pyproject.toml claims, one per line ("3.9" ...).

The claim is the classifiers ``Programming Language :: Python :: 3.N``; this
fails unless ``requires-python`` admits exactly those versions (no gap, none
before the first, none after the last), so that what pip lets users install
on is what .ci/every-python tests.  Runs on the Python that runs CI (3.11 or
newer, for tomllib); pip's vendored ``packaging`` reads the specifier.
"""

import sys

import tomllib
from pip._vendor.packaging.specifiers import SpecifierSet

PREFIX = "Programming Language :: Python :: 3."

with open("pyproject.toml", "rb") as f:
    project = tomllib.load(f)["project"]

claimed = sorted(int(c[len(PREFIX):]) for c in project["classifiers"]
                 if c.startswith(PREFIX) and c[len(PREFIX):].isdigit())
if not claimed:
    sys.exit("pyproject.toml: no 'Programming Language :: Python :: 3.N' classifier")
requires = SpecifierSet(project["requires-python"])
# Every minor version from 3.0 to well past today's: admitted iff claimed.
admitted = [minor for minor in range(0, 40) if f"3.{minor}.0" in requires]
if admitted != claimed:
    sys.exit(f"pyproject.toml: requires-python {project['requires-python']!r} admits "
             f"{['3.%d' % m for m in admitted]} but the classifiers claim "
             f"{['3.%d' % m for m in claimed]}")
print("\n".join(f"3.{minor}" for minor in claimed))
