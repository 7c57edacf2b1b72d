"""Published models stay servable by KServe's stock sklearn runtime.

The stock ``kserve-sklearnserver`` loads the one ``.joblib``/``.pkl`` file of a model
folder with plain ``joblib.load`` and predicts on what ``kserve.utils.get_predict_input``
makes of the request. These tests check the three things that needs: exactly one model
file, a pickle that references no kfp-mlops class, and predictions from a process that
never imports kfp-mlops equal to ours, on a V1 request of records (rows the
stock runtime gets must be complete: it does no input preparation of its own).
"""

import json
import pickletools
import subprocess
import sys

from kfp_mlops.data.sources import load_table
from kfp_mlops.model.features import model_inputs
from kfp_mlops.model.package import MODEL_SUFFIXES, write_model_folder
from kfp_mlops.model.settings import TrainingSettings
from kfp_mlops.model.train import train_model

STOCK_PREDICT = r"""
import json, sys
import joblib
from kserve.utils.utils import get_predict_input
model = joblib.load(sys.argv[1])
frame = get_predict_input(json.load(open(sys.argv[2])))
assert not any(m.startswith("kfp_mlops") for m in sys.modules), "stock side imported kfp_mlops"
print(json.dumps(model.predict(frame).tolist()))
"""


def published_penguins(tmp_path):
    frame = load_table("penguins")
    model, metadata = train_model(frame, TrainingSettings(target="species", task="classification"))
    folder = tmp_path / "model"
    write_model_folder(model, metadata, folder)
    return model, metadata, folder, frame


def test_one_model_file_and_no_custom_classes_in_the_pickle(tmp_path):
    _, _, folder, _ = published_penguins(tmp_path)
    model_files = [p.name for p in folder.iterdir() if p.suffix in MODEL_SUFFIXES]
    assert model_files == ["model.joblib"]
    modules = {
        arg.split(" ")[0]
        for op, arg, _ in pickletools.genops((folder / "model.joblib").read_bytes())
        if op.name in ("GLOBAL", "STACK_GLOBAL") and isinstance(arg, str)
    }
    assert not any(m.startswith("kfp_mlops") for m in modules), modules


def test_stock_runtime_predictions_equal_ours(tmp_path):
    model, metadata, folder, frame = published_penguins(tmp_path)
    # The stock runtime does no input preparation: send complete rows, typed as trained.
    rows = model_inputs(frame.dropna(), metadata).head(25)
    expected = model.predict(rows).tolist()
    records = json.loads(rows.to_json(orient="records"))
    v1 = {"instances": [records]}
    (tmp_path / "v1.json").write_text(json.dumps(v1))
    out = subprocess.run(
        [sys.executable, "-c", STOCK_PREDICT, str(folder / "model.joblib"), str(tmp_path / "v1.json")],
        capture_output=True, text=True, check=True, cwd=tmp_path,
    )
    assert json.loads(out.stdout) == expected
