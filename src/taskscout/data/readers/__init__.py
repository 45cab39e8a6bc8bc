"""Readers: everything that turns bytes into tables, one small module per format or layout.

- :mod:`.table`: what user-data readers return (:class:`~.table.RawTable`) and the bounds they read within;
- :mod:`.files`: user data files (CSV/TSV, JSON, JSON Lines, Parquet; optionally compressed);
- :mod:`.hf`: Hugging Face datasets (``save_to_disk`` directories and ``hf:`` specs);
- :mod:`.orange_tab`, :mod:`.r_data`, :mod:`.sword`: the formats catalog data comes in (Orange ``.tab``,
  R data files, SWORD zText).

Catalog readers read bytes that the catalog has already taken out of a verified archive and return plain
Python / pandas objects; none of the readers imports, unpickles or executes anything from the data. A
file that does not have the layout a reader expects raises a one-line error naming the file and what
was expected.
"""
