"""The walkthrough notebook runs top to bottom, so it cannot rot as the API changes."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
from ipykernel.kernelspec import write_kernel_spec
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "01-baikonur-walkthrough.ipynb"


def _text(cell: nbformat.NotebookNode) -> str:
    """Everything a code cell printed or displayed, as plain text."""
    parts = []
    for output in cell.get("outputs", []):
        if output.output_type == "stream":
            parts.append(output.text)
        elif "data" in output:
            parts.append(output.data.get("text/plain", ""))
    return "".join(parts)


@pytest.fixture(scope="module")
def executed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[nbformat.NotebookNode]:
    """The notebook executed in a fresh kernel of this interpreter, from a scratch folder."""
    jupyter = tmp_path_factory.mktemp("jupyter")
    workdir = tmp_path_factory.mktemp("notebook-cwd")
    # A python3 kernelspec that runs this interpreter (the venv's), ahead of any user-wide one.
    write_kernel_spec(jupyter / "kernels" / "python3")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell("import sys\nprint('kernel:', sys.executable)"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("JUPYTER_PATH", str(jupyter))
        client = NotebookClient(nb, timeout=600, kernel_name="python3",
                                resources={"metadata": {"path": str(workdir)}})
        client.execute()
    yield nb


def test_notebook_is_committed_without_outputs() -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert code, "the notebook has no code cells"
    for cell in code:
        assert cell.outputs == []
        assert cell.execution_count is None


@pytest.mark.slow
def test_notebook_runs_the_whole_flow(executed: nbformat.NotebookNode) -> None:
    code = [cell for cell in executed.cells if cell.cell_type == "code"]
    errors = [out for cell in code for out in cell.outputs if out.output_type == "error"]
    assert not errors, errors
    assert all(cell.execution_count is not None for cell in code)
    text = "\n".join(_text(cell) for cell in code)

    kernel = re.search(r"^kernel: (.+)$", text, re.MULTILINE)
    assert kernel and Path(kernel.group(1)).resolve() == Path(sys.executable).resolve()

    assert re.search(r"^validate: OK \(0 error\(s\)", text, re.MULTILINE)
    cds = re.search(r"^CDs: (\d+)$", text, re.MULTILINE)
    ids = re.search(r"^IDs: (\d+)$", text, re.MULTILINE)
    rds = re.search(r"^RDs: (\d+)$", text, re.MULTILINE)
    assert cds and ids and rds
    n_cd, n_id, n_rd = int(cds.group(1)), int(ids.group(1)), int(rds.group(1))
    assert 0 < n_rd <= n_cd and 0 < n_id <= n_cd
    invariants = re.search(r"^invariants: OK \((\d+) units in (\d+) CDs", text, re.MULTILINE)
    assert invariants and int(invariants.group(2)) == n_cd
    assert re.search(r"^map: \S+\.html, [\d.]+ MB$", text, re.MULTILINE)
    for name in ("map.html", "plan.gpkg", "staffing.csv", "staffing.xlsx", "summary.json"):
        assert name in text
    sheets = re.search(r"sheets/: (\d+) files", text)
    assert sheets and int(sheets.group(1)) >= n_cd + n_id  # one per CD and one per ID
    assert re.search(r"^check: OK \(0 violation\(s\)\)$", text, re.MULTILINE)
