"""The README's Python example runs as written (keeps the documentation true)."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_opens_with_the_two_commands():
    text = README.read_text()
    first_block = re.search(r"```\n(.*?)```", text, re.S).group(1)
    assert first_block.splitlines()[0].startswith("make demo")
    assert first_block.splitlines()[1].startswith("make test")


def test_readme_python_example_runs(tmp_path, monkeypatch):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert blocks, "README has no Python example"
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(blocks[0], "README.md", "exec"), namespace)
    # the example's own objects: a dataset that round-tripped through disk
    assert (tmp_path / "data" / "l4" / "card.json").is_file()
    ds = namespace["ds"]
    assert ds.x.shape[0] == len(ds.context) and namespace["train_x"].shape[0] > 0
    assert namespace["c"].shape == (10_000, 4)
