"""Exports: raw submissions in ODK Central's layout and the ward's reports (domain §6–§7).

Every export is a set of named tables whose rows are produced lazily, so memory stays flat
whatever the number of rows; `tables.py` writes them as CSV (UTF-8 with BOM by default,
formula-safe text cells) or as one .xlsx workbook.
"""
