"""One importable package: a wheel installed in a fresh virtual environment, run from
a folder holding a decoy ``model.py`` (as next to a user's notebook), runs the
README's Python example; nothing is installed under the bare names ``model``,
``analysis`` or ``experiments``; ``--version`` and provenance."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def readme_example() -> str:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Ten lines of Python", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    dist = tmp_path_factory.mktemp("dist")
    r = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr
    return next(dist.glob("crossmargin-*.whl"))


def test_wheel_holds_one_package(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"crossmargin"}, tops
    assert "crossmargin/experiments/scenarios/oct2025_collateral_depeg.toml" in names
    for registered in ("criteria", "events", "multivenue"):  # validate reads them
        assert f"crossmargin/analysis/validation/{registered}.toml" in names
    assert "crossmargin/experiments/scenarios/multivenue.toml" in names
    assert not any(n.startswith(("crossmargin/tests/", "crossmargin/benchmarks/")) for n in names)
    # the compiled order book is built into it (model/_book.pyx, model/_ladder.pxi), not
    # its sources
    assert any(n.startswith("crossmargin/model/_book.") and n.endswith(".so") for n in names)
    assert not any(n.endswith((".pyx", ".pxi", ".cpp")) for n in names)


def test_wheel_in_fresh_venv_runs_readme_example_beside_a_decoy(wheel, tmp_path):
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=False)
    py = env_dir / "bin" / "python"
    # The project's dependencies come from the test's own environment (no download);
    # only its site folder is shared, not its editable install of crossmargin.
    site = next(Path(p) for p in sys.path if p.endswith("site-packages"))
    new_site = next((env_dir / "lib").glob("python3*/site-packages"))
    (new_site / "deps.pth").write_text(str(site) + "\n")
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(py),
            "install",
            "--no-deps",
            "-q",
            str(wheel),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr
    work = tmp_path / "work"
    work.mkdir()
    (work / "model.py").write_text("raise ImportError('the decoy model.py was imported')\n")
    (work / "analysis.py").write_text("raise ImportError('the decoy analysis.py was imported')\n")
    (work / "example.py").write_text(readme_example())
    r = subprocess.run(
        [str(py), "example.py"], cwd=work, capture_output=True, text=True, timeout=600
    )
    assert r.returncode == 0, r.stderr
    assert "cross" in r.stdout and "isolated" in r.stdout
    r = subprocess.run(
        [str(py), "-c", "import crossmargin, json; print(json.dumps(crossmargin.presets()))"],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "oct2025_collateral_depeg" in json.loads(r.stdout)
    r = subprocess.run(
        [str(env_dir / "bin" / "crossmargin"), "--version"], capture_output=True, text=True
    )
    assert r.returncode == 0 and r.stdout.startswith("crossmargin 0.")


def test_summary_records_provenance(tmp_path):
    from crossmargin.experiments.cli import main
    from crossmargin.model import orderbook

    src = tmp_path / "s.toml"
    src.write_text((ROOT / "experiments/scenarios/calm.toml").read_text())
    with pytest.raises(SystemExit) as exc:
        main(["run", str(src), "--steps", "5", "--out", str(tmp_path / "out"), "--no-progress"])
    assert exc.value.code == 0
    p = json.loads((tmp_path / "out" / "summary.json").read_text())["provenance"]
    assert set(p) == {"crossmargin", "commit", "python", "numpy", "mesa", "order_book", "command"}
    assert p["order_book"] == ("compiled" if orderbook.COMPILED else "python")  # twins intact
    assert "--steps 5" in p["command"]
    for f in (tmp_path / "out").iterdir():
        assert f.stat().st_mode & 0o777 == 0o644, f


def test_default_run_folders_are_unique(tmp_path, monkeypatch):
    from crossmargin.experiments.cli import main

    monkeypatch.chdir(tmp_path)
    src = ROOT / "experiments/scenarios/calm.toml"
    for seed in ("1", "2"):
        with pytest.raises(SystemExit) as exc:
            main(["run", str(src), "--steps", "3", "--seed", seed, "--no-progress"])
        assert exc.value.code == 0
    folders = sorted(p.name for p in (tmp_path / "results").iterdir())
    assert (
        len(folders) == 2 and folders[0].startswith("calm-1-") and folders[1].startswith("calm-2-")
    )
    # the same scenario and seed again: refused, the first run kept
    with pytest.raises(SystemExit) as exc:
        main(["run", str(src), "--steps", "3", "--seed", "1", "--no-progress"])
    assert exc.value.code == 2


def test_citation_file_is_complete_and_current():
    """CITATION.cff: valid YAML with what CFF 1.2.0 requires, a preferred citation, and
    the version pyproject.toml gives (issue #23)."""
    import tomllib

    import yaml

    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    for key in ("cff-version", "message", "title", "authors", "version", "preferred-citation"):
        assert key in cff, key
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert str(cff["version"]) == version == str(cff["preferred-citation"]["version"])
    assert cff["preferred-citation"]["type"] == "software" and cff["preferred-citation"]["authors"]
    refs = (ROOT / "docs" / "references.md").read_text()
    assert "not the paper's title" not in refs and "placeholder" not in refs.lower()


def test_stored_notebook_outputs_are_clean():
    """What readers see in the notebooks holds no warning, no traceback and no path of
    the machine that ran them (issue #23)."""
    for nb_path in sorted((ROOT / "docs" / "notebooks").glob("*.ipynb")):
        nb = json.loads(nb_path.read_text())
        for cell in nb["cells"]:
            for out in cell.get("outputs", []):
                assert out.get("name") != "stderr", (nb_path.name, out.get("text"))
                assert out.get("output_type") != "error", nb_path.name
                text = json.dumps(out)
                for needle in ("/work/", "/root/", "/home/", "site-packages", "Warning"):
                    assert needle not in text, (nb_path.name, needle)


def test_report_names_each_order_path():
    """The report's provenance line reads right for each value of ``order_book``."""
    from crossmargin.analysis.report import _provenance_line

    lines = {
        v: _provenance_line({"crossmargin": "0.1.0", "order_book": v, "command": "c"})
        for v in ("compiled", "python", "compiled book")
    }
    assert "the compiled order book;" in lines["compiled"]
    assert "the Python order book;" in lines["python"]
    assert "order path in Python (a twin edited);" in lines["compiled book"]
