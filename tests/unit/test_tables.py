"""CSV and XLSX writing for people: BOM, formula-safe cells, numbers untouched."""

import csv
import io

from openpyxl import load_workbook

from server.exports.tables import Table, csv_chunks, safe_cell, write_xlsx


def test_formula_like_text_gets_one_quote_and_numbers_stay():
    assert safe_cell("=HYPERLINK(\"http://x\")") == "'=HYPERLINK(\"http://x\")"
    assert safe_cell("+84912345678") == "'+84912345678"
    assert safe_cell("@SUM(A1)") == "'@SUM(A1)"
    assert safe_cell("\tcmd") == "'\tcmd"
    assert safe_cell("-3.2") == "-3.2"  # a negative altitude is a number, not a formula
    assert safe_cell("-x") == "'-x"
    assert safe_cell(-3.2) == -3.2 and safe_cell(None) == "" and safe_cell(True) == 1
    assert safe_cell("Nguyễn Văn Hùng") == "Nguyễn Văn Hùng"


def test_csv_has_bom_crlf_and_round_trips():
    rows = [["Nguyễn Văn Hùng", "a,b", 'say "hi"', "=1+1", "line\nbreak"]]
    table = Table("t", ["name", "comma", "quote", "formula", "multi"], lambda: rows)
    text = "".join(csv_chunks(table))
    assert text.startswith("\ufeffname,comma,quote,formula,multi\r\n")
    parsed = list(csv.reader(io.StringIO(text.removeprefix("\ufeff"))))
    assert parsed[1] == ["Nguyễn Văn Hùng", "a,b", 'say "hi"', "'=1+1", "line\nbreak"]
    assert not "".join(csv_chunks(table, bom=False)).startswith("\ufeff")


def test_xlsx_one_sheet_per_table(tmp_path):
    a = Table("indicators_long", ["code", "value"], lambda: [["I01", "66.7"], ["I02", "=x"]])
    b = Table("report_wide", ["tdp", "phone"], lambda: [["tdp01", "0912345678"]])
    write_xlsx([a, b], tmp_path / "r.xlsx")
    wb = load_workbook(tmp_path / "r.xlsx")
    assert wb.sheetnames == ["indicators_long", "report_wide"]
    assert [c.value for c in wb["indicators_long"][2]] == ["I01", 66.7]
    assert wb["indicators_long"]["B3"].value == "'=x"
    assert wb["report_wide"]["B2"].value == "0912345678"  # a phone stays text
