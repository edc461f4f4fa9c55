"""Parquet, read a record batch at a time with pyarrow and written back with the input's schema plus two columns.

Memory is bounded by the chunk and by one row group (pyarrow decodes a row group's column chunks to serve
batches from it): files written with very large row groups need that much memory, whatever the chunk size.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from pipeline_modules.scoring import rows
from pipeline_modules.scoring.rows import Chunk, ScoringError


def _pyarrow() -> tuple[Any, Any]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    return pa, pq


class ParquetReader:
    format = "parquet"

    def __init__(self, path: Path, text_column: str) -> None:
        pa, pq = _pyarrow()
        self.path = path
        try:
            self._file = pq.ParquetFile(str(path))
        except (OSError, pa.ArrowException) as error:
            raise ScoringError(f"{path} is not a readable Parquet file: {rows.short(error)}") from None
        self.schema = self._file.schema_arrow
        self.columns: Sequence[str] = list(self.schema.names)
        if text_column not in self.columns:
            raise ScoringError(
                f"{path} has no column {text_column!r} (its columns: {', '.join(self.columns) or 'none'}): "
                "name the text column with --text-column"
            )
        kind = self.schema.field(text_column).type
        types = pa.types
        self._binary = types.is_binary(kind) or types.is_large_binary(kind)
        if not (self._binary or types.is_string(kind) or types.is_large_string(kind)):
            raise ScoringError(f"{path}: column {text_column!r} is {kind}, not a string column")
        self.text_column = text_column
        self.total_rows: int | None = self._file.metadata.num_rows
        self._rows_read = 0

    def chunks(self, chunk_size: int) -> Iterator[Chunk]:
        pa, _ = _pyarrow()
        row = 1
        for batch in self._file.iter_batches(batch_size=chunk_size):
            values = batch.column(batch.schema.get_field_index(self.text_column)).to_pylist()
            chunk = Chunk(first_row=row, texts=[None] * len(values), table=pa.Table.from_batches([batch]))
            for index, value in enumerate(values):
                if self._binary and value is not None:
                    try:
                        value = value.decode("utf-8")
                    except UnicodeDecodeError:
                        chunk.reject(index, rows.NOT_UTF8, "the text is not valid UTF-8")
                        continue
                text, problem = rows.vet_text(value)
                chunk.texts[index] = text
                if problem is not None:
                    chunk.reject(index, *problem)
            row += len(values)
            self._rows_read += len(values)
            if values:
                yield chunk

    def fraction_read(self) -> float | None:
        return self._rows_read / self.total_rows if self.total_rows else None

    def close(self) -> None:
        closer = getattr(self._file, "close", None)  # ParquetFile.close exists from pyarrow 11 on
        if closer is not None:
            closer()


class ParquetWriter:
    def __init__(self, path: Path, schema: Any, probability_column: str, label_column: str) -> None:
        pa, pq = _pyarrow()
        self.schema = schema.append(pa.field(probability_column, pa.float32())).append(
            pa.field(label_column, pa.string())
        )
        self._writer = pq.ParquetWriter(str(path), self.schema)

    def write(self, chunk: Chunk, probabilities: Sequence[float | None], labels: Sequence[str | None]) -> None:
        pa, _ = _pyarrow()
        keep = [text is not None for text in chunk.texts]
        table = chunk.table.filter(pa.array(keep, pa.bool_()))
        scored = [i for i, kept in enumerate(keep) if kept]
        table = table.append_column(
            self.schema.field(len(self.schema) - 2), pa.array([probabilities[i] for i in scored], pa.float32())
        )
        table = table.append_column(
            self.schema.field(len(self.schema) - 1), pa.array([labels[i] for i in scored], pa.string())
        )
        self._writer.write_table(table.cast(self.schema))

    def close(self) -> None:
        self._writer.close()
