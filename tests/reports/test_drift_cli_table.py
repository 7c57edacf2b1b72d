"""`kfp-mlops data drift` in text mode: a table whose columns line up, the target marked."""

from kfp_mlops.app.cli import main
from kfp_mlops.app.commands.data import aligned
from kfp_mlops.data.generator import make_batch


def test_aligned_pads_every_column_to_its_widest_cell():
    lines = aligned(["A", "NUMBER"], [["long name", "1.5"], ["b", "12.25"]], "<>")
    assert lines == ["A          NUMBER", "long name     1.5", "b           12.25"]


def test_drift_table_lines_up_and_marks_the_target(tmp_path, capsys):
    make_batch("reference", 600, 1).to_csv(tmp_path / "ref.csv", index=False)
    make_batch("drifted", 600, 3).to_csv(tmp_path / "cur.csv", index=False)
    report = tmp_path / "drift.html"
    code = main(["data", "drift", "--store", str(tmp_path / "store"), "--reference",
                 str(tmp_path / "ref.csv"), "--current", str(tmp_path / "cur.csv"),
                 "--target", "default", "--report", str(report)])
    out = capsys.readouterr().out.splitlines()
    assert code == 0
    assert "of 6 features drifted" in out[0] and "the target 'default'" in out[0]
    table = out[1:9]  # header, 6 features, the target
    assert table[0].split() == ["COLUMN", "ROLE", "TEST", "SCORE", "THRESHOLD", "DRIFT"]
    # Every column starts at the header's offset; the numbers end where their header ends.
    for name in ("ROLE", "TEST"):
        at = table[0].index(name)
        assert all(line[at - 2:at] == "  " and line[at] != " " for line in table), name
    for name in ("SCORE", "THRESHOLD"):
        end = table[0].index(name) + len(name)
        assert all(line[end - 1] != " " and line[end:end + 2] == "  " for line in table), name
    assert table[-1].startswith("default") and "target (not counted)" in table[-1]
    assert "credit_lines" in "".join(table)  # the longest name sets the first column
    page = report.read_text()
    assert f"Statistics of the current data ({tmp_path / 'cur.csv'})" in page
