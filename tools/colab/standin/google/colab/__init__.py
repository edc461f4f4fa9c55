"""A stand-in for Colab's `google.colab` package (not on PyPI), for running the notebook as Colab would, offline.

Only what the notebook uses: `drive.mount` (Drive is a local folder, `$COLAB_STANDIN_DRIVE`) and
`output.enable_custom_widget_manager` (a no-op that records the call). tools/colab_emulation.py installs it.
"""
