"""The index of a batch run: one row per photo, in shards.

Rows are kept in memory until a shard is full (or has waited long enough),
then written as one new file, atomically and flushed to disk, so that the
index of a million photos is never rewritten whole, and a killed run loses
at most the rows of its unwritten shard (those photos are done again).
"""

from __future__ import annotations

import io
import json
import os
import time
from pathlib import Path
from typing import Any

from ..errors import DeepInsideError
from ..io.files import atomic_write

INDEX_FOLDER = "index"
SHARD_PREFIX = "part-"

Row = dict[str, Any]


def _schema() -> Any:
    import pyarrow as pa

    prediction = pa.struct(
        [
            ("class_index", pa.int32()),
            ("wnid", pa.string()),
            ("label", pa.string()),
            ("logit", pa.float64()),
            ("probability", pa.float64()),
        ]
    )
    map_stats = pa.struct(
        [
            ("method", pa.string()),
            ("class_index", pa.int32()),
            ("max", pa.float64()),
            ("mean", pa.float64()),
            ("std", pa.float64()),
        ]
    )
    box = pa.struct(
        [
            ("class_index", pa.int32()),
            ("label", pa.string()),
            ("x0", pa.float64()),
            ("y0", pa.float64()),
            ("x1", pa.float64()),
            ("y1", pa.float64()),
            ("fallback", pa.string()),
        ]
    )
    return pa.schema(
        [
            ("path", pa.string()),
            ("sha256", pa.string()),
            ("bytes", pa.int64()),
            ("width", pa.int32()),
            ("height", pa.int32()),
            ("true_class", pa.string()),
            ("predictions", pa.list_(prediction)),
            ("maps", pa.list_(map_stats)),
            ("boxes", pa.list_(box)),
            ("maps_file", pa.string()),
            ("pictures", pa.list_(pa.string())),
            ("decode_s", pa.float64()),
            ("model_s", pa.float64()),
            ("write_s", pa.float64()),
            ("error", pa.string()),
        ]
    )


#: The index's columns, in order (the Parquet schema gives their types).
COLUMNS = (
    "path",
    "sha256",
    "bytes",
    "width",
    "height",
    "true_class",
    "predictions",
    "maps",
    "boxes",
    "maps_file",
    "pictures",
    "decode_s",
    "model_s",
    "write_s",
    "error",
)


def require_pyarrow() -> None:
    try:
        import pyarrow  # noqa: F401
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        raise DeepInsideError(
            "a Parquet index needs pyarrow: pip install 'deepinside[batch]', or use --index jsonl"
        ) from None


class IndexWriter:
    """Collects rows and writes them as shards ``index/part-NNNNNN.EXT``,
    numbered on from the shards already there."""

    def __init__(self, out: Path, fmt: str = "parquet", shard_rows: int = 1000, flush_seconds: float = 60.0):
        if fmt == "parquet":
            require_pyarrow()
        self.folder = out / INDEX_FOLDER
        self.fmt = fmt
        self.shard_rows = shard_rows
        self.flush_seconds = flush_seconds
        self.rows: list[Row] = []
        self._since = 0.0
        self._next = 1 + max((_shard_number(p) for p in shard_paths(out)), default=0)

    def add(self, row: Row) -> None:
        if not self.rows:
            self._since = time.monotonic()
        self.rows.append(row)
        if len(self.rows) >= self.shard_rows or time.monotonic() - self._since >= self.flush_seconds:
            self.flush()

    def flush(self) -> Path | None:
        """Write the rows held as one shard (none: nothing written)."""
        if not self.rows:
            return None
        path = self.folder / f"{SHARD_PREFIX}{self._next:06d}.{self.fmt}"
        data = _parquet_bytes(self.rows) if self.fmt == "parquet" else _jsonl_bytes(self.rows)
        write_durably(path, data)
        self._next += 1
        self.rows = []
        return path


def write_durably(path: Path, data: bytes) -> None:
    """Write atomically, and make the file and its name survive a power cut
    before returning (the rows it holds count as done from then on)."""
    with atomic_write(path) as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


def _parquet_bytes(rows: list[Row]) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pylist(rows, schema=_schema())
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue()


def _jsonl_bytes(rows: list[Row]) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode("utf-8")


def _shard_number(path: Path) -> int:
    return int(path.stem.removeprefix(SHARD_PREFIX))


def shard_paths(out: Path) -> list[Path]:
    """The index's shards in order (temporary files of cut-short writes are not shards)."""
    folder = Path(out) / INDEX_FOLDER
    if not folder.is_dir():
        return []
    found = [
        p
        for p in folder.iterdir()
        if p.name.startswith(SHARD_PREFIX)
        and p.suffix in (".parquet", ".jsonl")
        and p.stem.removeprefix(SHARD_PREFIX).isdigit()
    ]
    return sorted(found, key=_shard_number)


def read_index(out: str | os.PathLike[str], columns: list[str] | None = None) -> list[Row]:
    """Every row of a batch run's index, shard after shard (``columns``: only those)."""
    rows: list[Row] = []
    for path in shard_paths(Path(out)):
        if path.suffix == ".parquet":
            import pyarrow.parquet as pq

            rows.extend(pq.read_table(path, columns=columns).to_pylist())
        else:
            with path.open(encoding="utf-8") as handle:
                for line in handle:
                    row = json.loads(line)
                    rows.append({k: row.get(k) for k in columns} if columns else row)
    return rows


def done_paths(out: Path) -> set[str]:
    """The photos (index keys) a run in ``out`` has finished, failed ones included."""
    return {r["path"] for r in read_index(out, columns=["path"])}


__all__ = ["COLUMNS", "IndexWriter", "read_index", "shard_paths"]
