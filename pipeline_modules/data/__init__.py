"""IMDB Large Movie Review data in: find it (`locate`), read it (`read`), vet it (`vet`), and fake it (`synthetic`).

`layout` holds what the official ``aclImdb/`` layout means and the two errors; the other modules import it, `read`
imports `locate` and `vet`, and nothing here imports TensorFlow except the TFDS reader, on its own code path.
The names below are the ones the rest of the code uses. To stub the network check or the TFDS lookup in a test,
patch them where they are looked up: `pipeline_modules.data.locate`.
"""

from pipeline_modules.data.layout import (
    ARCHIVE_NAME,
    CLASSES,
    DATASET_URL,
    RATING_RANGE,
    SPLITS,
    ImdbDataNotFound,
    ImdbLayoutError,
)
from pipeline_modules.data.locate import (
    CONVENTIONAL_PATHS,
    DEFAULT_FLAG,
    ENV_VAR,
    TFDS_HOSTS,
    TFDS_NAME,
    TFDS_SOURCE,
    ImdbSource,
    locate_imdb_source,
    no_data_message,
    prepared_tfds_dir,
    resolve_source,
    source_fingerprint,
    tfds_reachable,
)
from pipeline_modules.data.read import ImdbData, TfdsLoad, read_imdb, shuffled, subsample_balanced, summary
from pipeline_modules.data.synthetic import SyntheticArchiveInfo, write_synthetic_archive
from pipeline_modules.data.vet import (
    EMPTY,
    NO_RATING,
    NOT_UTF8,
    RATING_MISMATCH,
    ImdbRecord,
    ImdbReport,
    SplitReport,
)

__all__ = [
    "ARCHIVE_NAME",
    "CLASSES",
    "CONVENTIONAL_PATHS",
    "DATASET_URL",
    "DEFAULT_FLAG",
    "EMPTY",
    "ENV_VAR",
    "NOT_UTF8",
    "NO_RATING",
    "RATING_MISMATCH",
    "RATING_RANGE",
    "SPLITS",
    "TFDS_HOSTS",
    "TFDS_NAME",
    "TFDS_SOURCE",
    "ImdbData",
    "ImdbDataNotFound",
    "ImdbLayoutError",
    "ImdbRecord",
    "ImdbReport",
    "ImdbSource",
    "SplitReport",
    "SyntheticArchiveInfo",
    "TfdsLoad",
    "locate_imdb_source",
    "no_data_message",
    "prepared_tfds_dir",
    "read_imdb",
    "resolve_source",
    "shuffled",
    "source_fingerprint",
    "subsample_balanced",
    "summary",
    "tfds_reachable",
    "write_synthetic_archive",
]
