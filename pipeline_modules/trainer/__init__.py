"""The Trainer's parts, one job each; `pipeline_modules.trainer_module` (`run_fn`, `tuner_fn`) puts them together.

`data` (the datasets Trainer and Tuner read), `model` (network, optimizer, compile), `distribution` (strategy and
global batch sizes), `tuning` (KerasTuner search), `progress` (training logs and summaries), `export` (the serving
signatures). Each imports only `pipeline_modules.features` and `pipeline_modules.settings` (and `export` also
`data.padded_length`), never `trainer_module`.
"""
