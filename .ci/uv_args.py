"""Print pip's index settings as ``uv pip install`` arguments.

uv does not read pip's configuration (``pip.conf``, ``PIP_*``), and this machine's
packages come from the indexes, wheel folders and constraints pip is configured with.
Run with the virtual environment's Python; prints nothing when pip has no settings.
"""

import shlex
import subprocess
import sys

OPTIONS = {
    "index-url": "--index-url",
    "extra-index-url": "--extra-index-url",
    "find-links": "--find-links",
    "constraint": "--constraint",
}

listed = subprocess.run(
    [sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True, check=True
).stdout
args: list[str] = []
for line in listed.splitlines():
    key, _, value = line.partition("=")
    flag = OPTIONS.get(key.rsplit(".", 1)[-1])
    if flag is None:
        continue
    for item in shlex.split(value.strip().strip("'\"")):
        if [flag, item] not in [args[i : i + 2] for i in range(0, len(args), 2)]:
            args += [flag, item]
# pip takes the best version from every index; so does uv with this strategy.
print(shlex.join(["--index-strategy", "unsafe-best-match", *args]))
