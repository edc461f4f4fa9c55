"""The converter's command line."""

from __future__ import annotations

import json

from pipeline_modules.encoder import hf_to_tfhub


def test_cli_converts_and_refuses_to_clobber(tiny_checkpoint, tmp_path, capsys):
    out = tmp_path / "cli-out"
    assert hf_to_tfhub.main([str(tiny_checkpoint), str(out), "--num-layers", "1", "--no-lower-case"]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    info = json.loads((out / "conversion.json").read_text())
    assert (info["num_layers"], info["source_num_layers"], info["do_lower_case"]) == (1, 2, False)
    assert hf_to_tfhub.main([str(tiny_checkpoint), str(out)]) == 2
    assert "overwrite" in capsys.readouterr().err
