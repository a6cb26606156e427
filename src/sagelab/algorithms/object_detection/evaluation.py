"""Mean average precision (PASCAL VOC style), in NumPy.

For each class: every detection of that class over all images, highest score first, is a true positive when it
overlaps (IoU >= `overlap_threshold`) an object of that class in its image that no earlier detection took, else a
false positive; AP is the area under the precision-recall curve with precision made monotone (VOC 2010's
all-point interpolation). mAP is the mean over the classes that have objects. torchmetrics' mean average
precision needs pycocotools or faster-coco-eval, neither of which the venv has, and COCO's metric averages
IoU 0.5..0.95 where SageMaker's validation:mAP is VOC's at one threshold; this is a few lines of NumPy.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def box_iou(box: np.ndarray, others: np.ndarray) -> np.ndarray:
    """IoU of one corner box (4,) with corner boxes (n, 4)."""
    top_left = np.maximum(box[:2], others[:, :2])
    bottom_right = np.minimum(box[2:], others[:, 2:])
    inter = np.clip(bottom_right - top_left, 0, None).prod(1)
    union = (box[2:] - box[:2]).prod() + (others[:, 2:] - others[:, :2]).prod(1) - inter
    return inter / np.maximum(union, 1e-12)


def average_precision(recall: np.ndarray, precision: np.ndarray) -> float:
    r = np.concatenate([[0.0], recall, [1.0]])
    p = np.concatenate([[0.0], precision, [0.0]])
    p = np.maximum.accumulate(p[::-1])[::-1]
    steps = np.nonzero(r[1:] != r[:-1])[0]
    return float(np.sum((r[steps + 1] - r[steps]) * p[steps + 1]))


def mean_average_precision(detections: Sequence[Sequence[Sequence[float]]], truths: Sequence[np.ndarray],
                           num_classes: int, overlap_threshold: float = 0.5) -> float:
    """`detections[i]`: image i's [class_id, score, xmin, ymin, xmax, ymax] rows; `truths[i]`: its (k, 5) objects
    (class_id, corners)."""
    aps = []
    for c in range(num_classes):
        objects = {i: t[t[:, 0] == c, 1:] for i, t in enumerate(truths)}
        total = sum(len(o) for o in objects.values())
        if not total:
            continue
        found = sorted(((row[1], i, np.asarray(row[2:6], dtype=np.float64)) for i, rows in enumerate(detections)
                        for row in rows if int(row[0]) == c), key=lambda item: -item[0])
        taken = {i: np.zeros(len(o), dtype=bool) for i, o in objects.items()}
        hits = np.zeros(len(found))
        for n, (_, i, box) in enumerate(found):
            if not len(objects[i]):
                continue
            overlaps = box_iou(box, objects[i])
            best = int(overlaps.argmax())
            if overlaps[best] >= overlap_threshold and not taken[i][best]:
                taken[i][best] = True
                hits[n] = 1.0
        if not len(found):
            aps.append(0.0)
            continue
        true_positives = np.cumsum(hits)
        precision = true_positives / np.arange(1, len(found) + 1)
        aps.append(average_precision(true_positives / total, precision))
    return float(np.mean(aps)) if aps else 0.0
