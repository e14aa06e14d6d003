"""examples/genauth_c.ipynb runs top to bottom in a real Jupyter kernel
(nbclient), started with this interpreter, so that it uses the genauth_c
under test."""
import json
import os
import sys

import pytest

nbclient = pytest.importorskip("nbclient")
nbformat = pytest.importorskip("nbformat")
pytest.importorskip("ipykernel")
from jupyter_client.kernelspec import KernelSpecManager  # noqa: E402
from jupyter_client.manager import KernelManager  # noqa: E402

NOTEBOOK = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples",
                        "genauth_c.ipynb")


@pytest.fixture
def kernel_manager(tmp_path):
    """A kernel of this interpreter: the kernel spec Jupyter would find by
    name runs whichever `python` is first on PATH."""
    spec_dir = tmp_path / "kernels" / "genauth-test"
    spec_dir.mkdir(parents=True)
    (spec_dir / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "genauth_c tests", "language": "python"}))
    specs = KernelSpecManager(kernel_dirs=[str(tmp_path / "kernels")])
    return KernelManager(kernel_name="genauth-test", kernel_spec_manager=specs)


def test_notebook_runs(kernel_manager, tmp_path):
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(
        nb, km=kernel_manager, timeout=120,
        resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # raises CellExecutionError when a cell fails
    # A cell's printed text first, then its results: the kernel sends one
    # print() as one stream output or several, as its writes and its flush
    # timer fall, so nothing may come between a cell's stream pieces.
    outputs = {i: "".join(o.get("text", "") for o in cell.get("outputs", []))
               + "".join(json.dumps(o["data"]) for o in cell.get("outputs", [])
                         if "data" in o)
               for i, cell in enumerate(nb.cells) if cell.cell_type == "code"}
    text = "\n".join(outputs.values())
    assert "'statusCode': 200" in text
    assert "APIError: 404" in text
    assert "TimeoutError:" in text
    assert "50 of 50 delivered; the receiver got 51 requests" in text
    assert "async: 10 webhooks; 10 of 10 triggered" in text
