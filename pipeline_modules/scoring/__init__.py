"""Batch scoring: a CSV, JSON Lines or Parquet file in, the same file with ``probability`` and ``label`` out.

`run.score_file` streams the input a chunk at a time (`text_files`, `parquet`), scores it with a `scorers.Scorer`
(the pushed SavedModel in this process, or a running server over REST or gRPC) and writes every row either to the
output or, with its row number and reason, to a rejects file (`rows`). `cli` is the ``bert-imdb-score`` command.
Importing this package loads no TensorFlow: the in-process scorer does, when it is built.
"""

from pipeline_modules.scoring.rows import FORMATS, Reject, ScoringError
from pipeline_modules.scoring.run import ScoreOptions, ScoreSummary, score_file
from pipeline_modules.scoring.scorers import GrpcScorer, InProcessScorer, RestScorer, Scorer, resolve_saved_model

__all__ = [
    "FORMATS",
    "GrpcScorer",
    "InProcessScorer",
    "Reject",
    "RestScorer",
    "ScoreOptions",
    "ScoreSummary",
    "Scorer",
    "ScoringError",
    "resolve_saved_model",
    "score_file",
]
