"""Print pip's index settings as ``uv pip install`` arguments.

uv does not read pip's configuration (``pip.conf``, ``PIP_*``), and this machine's
packages come from the indexes, wheel folders and constraints pip is configured with.
Run with the virtual environment's Python. Without any pip settings it prints only the
index strategy, and uv uses its default index.
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
pairs: dict[tuple[str, str], None] = {}  # in pip's order, each once (global and env)
for line in listed.splitlines():
    key, _, value = line.partition("=")
    flag = OPTIONS.get(key.rsplit(".", 1)[-1])
    if flag is not None:
        pairs.update(
            dict.fromkeys((flag, item) for item in shlex.split(value.strip().strip("'\"")))
        )
# pip takes the best version from every index; so does uv with this strategy.
print(shlex.join(["--index-strategy", "unsafe-best-match", *(x for pair in pairs for x in pair)]))
