"""An integer target with missing labels names the same classes as the complete one."""

import numpy as np
import pandas as pd

from kfp_mlops.model.features import class_labels


def test_whole_floats_name_the_integer_classes():
    gappy = pd.Series([1.0, np.nan, 0.0, 2.0])  # an int column with a blank, read back
    assert class_labels(gappy.dropna()).tolist() == ["1", "0", "2"]
    assert class_labels(pd.Series([1, 0, 2])).tolist() == ["1", "0", "2"]


def test_real_floats_and_text_are_left_as_they_are():
    assert class_labels(pd.Series([0.5, 1.0])).tolist() == ["0.5", "1.0"]
    assert class_labels(pd.Series(["yes", "no"])).tolist() == ["yes", "no"]
