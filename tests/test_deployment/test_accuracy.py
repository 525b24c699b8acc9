"""The accuracy measures of the 8-bit checks and benchmark table 7."""
import pytest
import torch

from mvig2_mm.deployment import accuracy


def test_top1_and_agreement_of_classes():
    logits = {0: [0.1, 0.9], 1: [0.8, 0.2], 2: [0.3, 0.7]}
    labelled = [(torch.full((1, 3, 4, 4), float(i)), label)
                for i, label in enumerate([1, 1, 1])]

    def forward(x):  # a runtime's forward: a list of arrays
        return [torch.tensor([logits[int(x[0, 0, 0, 0])]]).numpy()]

    predicted = accuracy.predict(forward, labelled)
    assert predicted == [1, 0, 1]
    assert accuracy.accuracy(predicted, [1, 1, 1]) == pytest.approx(200 / 3)
    assert accuracy.agreement(predicted, [1, 0, 0]) == pytest.approx(200 / 3)


def test_miou_is_mmsegs():
    """Maps: the mIoU equals mmseg's IoUMetric over the same images, the
    logits resized to the label's size, ignored pixels left out."""
    from mmengine.structures import PixelData
    from mmseg.evaluation.metrics import IoUMetric
    from mmseg.structures import SegDataSample
    generator = torch.Generator().manual_seed(0)
    labels = [torch.randint(0, 4, (8, 12), generator=generator)
              for _ in range(3)]
    labels[0][:2] = 255
    logits = [torch.randn(1, 4, 4, 6, generator=generator) for _ in labels]
    labelled = [(x, label) for x, label in zip(logits, labels)]
    predicted = accuracy.predict(lambda x: x, labelled)
    assert [p.shape for p in predicted] == [(8, 12)] * 3

    metric = IoUMetric()
    metric.dataset_meta = dict(classes=('a', 'b', 'c', 'd'))
    samples = []
    for pred, label in zip(predicted, labels):
        sample = SegDataSample(pred_sem_seg=PixelData(data=pred[None]),
                               gt_sem_seg=PixelData(data=label[None]))
        samples.append(sample.to_dict())
    metric.process({}, samples)
    expected = metric.evaluate(len(samples))['mIoU']
    assert accuracy.accuracy(predicted, labels, 4) == pytest.approx(
        expected, abs=0.005)  # mmseg rounds to 2 decimals
    assert accuracy.agreement(predicted, predicted) == 100.


def test_maps_resized_as_the_segmentor_resizes():
    """Logits smaller than the label are resized as mmseg's
    ``postprocess_result`` resizes them, with the segmentor's
    ``align_corners`` (the two settings give different maps here)."""
    from mmseg.models.utils import resize
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(1, 5, 4, 6, generator=generator)
    label = torch.zeros(15, 21, dtype=torch.long)
    maps = {}
    for align_corners in (False, True):
        maps[align_corners], = accuracy.predict(lambda x: x, [(logits, label)],
                                                align_corners)
        expected = resize(logits, size=(15, 21), mode='bilinear',
                          align_corners=align_corners)[0].argmax(0)
        assert torch.equal(maps[align_corners], expected)
    assert not torch.equal(maps[False], maps[True])
