import csv

from connectors.csv_export import write_csv
from transforms.exports import PRESETS


def test_written_file_reads_back_with_the_preset_dialect(tmp_path):
    path = tmp_path / "out" / "t.csv"
    rows = [["+79123456789", 'ООО "Ромашка", склад', "строка 1\nстрока 2"]]
    count = write_csv(path, ["phone", "company", "message"], iter(rows), PRESETS["looker"])
    assert count == 1
    with path.open(encoding="utf-8", newline="") as handle:
        assert list(csv.reader(handle)) == [["phone", "company", "message"], rows[0]]
    assert not list(tmp_path.glob("out/*.tmp"))
