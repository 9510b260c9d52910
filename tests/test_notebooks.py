"""Every notebook runs top to bottom (nbclient) on the small world in a scratch folder.

The kernel is this interpreter (the venv's python), registered as a kernel spec in a temp
folder on ``JUPYTER_PATH``, so a fresh clone needs no ``ipykernel install``. Fitting uses the
app's fast knob (``TWINSIM_SYNTHESISER=independent``) where the notebook follows the app's
settings; notebook 03 sets its own small mixture. Notebooks 01 and 02 share one demo world
(preparation is idempotent, so 02 reuses what 01 made).
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
KERNEL = "twinsim-test-python"


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("notebooks")


@pytest.fixture(scope="module")
def kernel_env(workdir: Path, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from ipykernel.kernelspec import write_kernel_spec

    jupyter = tmp_path_factory.mktemp("jupyter")
    write_kernel_spec(jupyter / "kernels" / KERNEL)  # argv: this sys.executable
    mp = pytest.MonkeyPatch()
    mp.setenv("JUPYTER_PATH", str(jupyter))
    mp.setenv("TWINSIM_NB_WORKDIR", str(workdir))
    mp.setenv("TWINSIM_SYNTHESISER", "independent")
    mp.setenv("TWINSIM_CACHE", str(workdir / "cache"))
    mp.setenv("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    yield
    mp.undo()


def _run(name: str) -> nbformat.NotebookNode:
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    client = NotebookClient(nb, kernel_name=KERNEL, timeout=300,
                            resources={"metadata": {"path": str(NOTEBOOKS)}})
    client.execute()
    return nb


def _outputs(nb: nbformat.NotebookNode) -> str:
    return "\n".join(str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", ""))
                     + str(o.get("data", {}).get("text/html", ""))
                     for c in nb.cells if c.cell_type == "code" for o in c.outputs)


@pytest.mark.usefixtures("kernel_env")
def test_kernel_is_this_interpreter() -> None:
    from jupyter_client.kernelspec import KernelSpecManager

    assert KernelSpecManager().get_kernel_spec(KERNEL).argv[0] == sys.executable


@pytest.mark.usefixtures("kernel_env")
def test_01_analyst_quickstart(workdir: Path) -> None:
    out = _outputs(_run("01_analyst_quickstart.ipynb"))
    assert (workdir / "demo" / "demo.json").is_file()
    assert "roi_low" in out and "incremental_margin_low" in out  # the sweep and the story


@pytest.mark.usefixtures("kernel_env")
def test_02_compliance(workdir: Path) -> None:
    out = _outputs(_run("02_compliance.ipynb"))
    assert "refused:" in out
    assert "ok: False" in out and "0 found in the release" in out


@pytest.mark.usefixtures("kernel_env")
def test_03_fidelity_validity(workdir: Path) -> None:
    nb = _run("03_fidelity_validity.ipynb")
    # altair's default renderer: HTML that embeds the Vega-Lite spec
    charts = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
              if "vegaEmbed" in str(o.get("data", {}).get("text/html", ""))]
    assert len(charts) == 2
    out = _outputs(nb)
    assert "tvd_2way_mean" in out and "covered" in out
