"""The image inputs and the ResNet backbone the image algorithms share."""

from __future__ import annotations

import numpy as np
import pytest

from sagelab.algorithms.base import DataError
from sagelab.algorithms.vision import records
from sagelab.algorithms.vision.resnet import ResNet


def _image(value: int) -> bytes:
    return records.encode_png(np.full((8, 6, 3), value, dtype=np.uint8))


def test_a_rec_file_keeps_single_and_multiple_labels_and_the_image():
    data = records.write_recordio([(3.0, _image(10)), ([1, 0.1, 0.2, 0.5, 0.6], _image(200))])
    first, second = records.read_recordio(data, source="train.rec")
    assert first.labels.tolist() == [3.0] and first.id == 0
    assert np.allclose(second.labels, [1, 0.1, 0.2, 0.5, 0.6]) and second.id == 1
    assert records.decode_image(second.image, where="x").shape == (8, 6, 3)
    assert int(records.decode_image(first.image, where="x")[0, 0, 0]) == 10


def test_bad_inputs_name_the_record_or_line():
    with pytest.raises(DataError, match=r"train.rec: .*bad magic number"):
        records.read_recordio(b"not recordio at all", source="train.rec").__next__()
    (record,) = records.read_recordio(records.write_recordio([(1.0, b"not an image")]), source="t.rec")
    with pytest.raises(DataError, match="t.rec, record 1: the image does not decode"):
        records.decode_image(record.image, where="t.rec, record 1")
    with pytest.raises(DataError, match=r"train.lst, line 2: expected tab-separated"):
        records.read_lst("0\t1\ta.png\nbroken line\n", source="train.lst")
    assert [(e.index, e.labels.tolist(), e.path) for e in records.read_lst("5\t2\t0.5\tdir/b.jpg\n",
                                                                           source="x")] == [(5, [2, 0.5], "dir/b.jpg")]


def test_masks_keep_their_class_ids_through_png_and_nearest_resizing():
    mask = np.zeros((4, 4), dtype=np.uint8)
    mask[:, 2:] = 7
    decoded = records.decode_image(records.encode_png(mask), where="mask", mode="L")
    assert decoded.tolist() == mask.tolist()
    assert set(np.unique(records.resize(decoded, 9, 9, nearest=True)).tolist()) == {0, 7}


@pytest.mark.parametrize(("depth", "size", "strides"), [(18, 64, (4, 8, 16, 32)), (50, 64, (4, 8, 16, 32)),
                                                        (20, 32, (1, 2, 4))])
def test_resnet_depths_classify_and_expose_stage_feature_maps(depth, size, strides):
    import torch

    net = ResNet(depth, num_classes=3, base_width=16).eval()
    x = torch.zeros(2, 3, size, size)
    assert net(x).shape == (2, 3)
    maps = net.features(x)
    assert [size // m.shape[-1] for m in maps] == list(strides)
    assert [m.shape[1] for m in maps] == list(net.stage_channels)
    with pytest.raises(ValueError, match="num_layers 7 is not a ResNet depth"):
        ResNet(7)
