"""bulk_ingest's marginal mode: the tail it splits off and the table it prints."""

import csv

import bulk_ingest
from bulk_ingest import TailRun, marginal_rows, split_csv


def test_the_tail_is_the_rows_after_the_head_each_file_with_the_header(tmp_path):
    whole, head, tail = tmp_path / "all.csv", tmp_path / "head.csv", tmp_path / "tail.csv"
    bulk_ingest.write_csv(whole, 50, seed=7)
    split_csv(whole, head, tail, head_rows=40)

    def rows(path):
        with path.open(encoding="utf-8", newline="") as handle:
            return list(csv.reader(handle))

    everything = rows(whole)
    assert rows(head) == everything[:41]
    assert rows(tail) == [everything[0], *everything[41:]]
    assert len(rows(tail)) == 11


def test_medians_spreads_and_ratios_against_the_empty_store_and_the_baseline():
    runs = [TailRun("this", "big", wall, cpu, 2**20) for wall, cpu in
            [(10, 9), (30, 12), (11, 10)]]
    runs += [TailRun("this", "empty", 6, cpu, 2**20) for cpu in (5, 5, 6)]
    runs += [TailRun("main", "big", 20, cpu, 2**21) for cpu in (20, 19, 30)]
    runs += [TailRun("main", "empty", 7, cpu, 2**21) for cpu in (6, 7, 8)]
    table = marginal_rows(runs, rows=1000)
    assert table[0] == ["this", "big", "11.0 s (10.0-30.0)", "10.0 s (9.0-12.0)", "10.00 ms",
                        "2.00", "2.00x", "1 MiB"]
    assert table[1][4:7] == ["5.00 ms", "1.00", "1.40x"]
    assert table[2][:2] == ["main", "big"] and table[2][5:7] == ["2.86", ""]
