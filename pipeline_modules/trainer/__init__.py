"""The Trainer's parts, one job each; `pipeline_modules.trainer_module` (`run_fn`, `tuner_fn`) puts them together.

`data` (the datasets Trainer and Tuner read), `model` (network, optimizer, compile; the encoder rebuilt in-process
through `pipeline_modules.encoder.loading`), `distribution` (strategy and global batch sizes), `tuning` (KerasTuner
search), `progress` (training logs and summaries), `export` (the serving signatures), `explain` (the integrated
gradients signature; it reuses Transform's tokenizer functions). They import `features`, `settings`, `encoder` and
each other, never `trainer_module`.
"""
