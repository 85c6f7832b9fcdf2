"""The DALI pipeline (one definition for GPU and CPU) and :class:`DaliLoader`, a drop-in for the torch loader.

``build_dali_loader`` reads the same :class:`~cllstr.data.loading.spec.LoaderSpec` as the torch backend (the same
mixture, caps, filters and ratio batches, resolved by :func:`cllstr.data.loading.torch_backend.build_dataset`) and
yields the same :class:`~cllstr.data.loading.batch.Batch`. Images come out of DALI's PyTorch iterator as ``(B, C, H,
W)`` float tensors, on the GPU in ``"gpu"`` mode; sample indices and valid flags ride along as extra outputs, and labels
are looked up per batch. If DALI's decoder still fails on something the source checks let through, the loader rebuilds
the pipeline and finishes the epoch with Pillow-validated input (``validation="full"``), then goes back to the fast
checks with the bad samples remembered.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import torch
from nvidia.dali import fn, pipeline_def, types
from nvidia.dali.plugin.pytorch import DALIGenericIterator

from cllstr.data.loading.augment import Augment
from cllstr.data.loading.batch import Batch
from cllstr.data.loading.dali import ops
from cllstr.data.loading.dali.ops import AugmentConfig
from cllstr.data.loading.dali.source import EpochPlan, LmdbBatchSource, RecordTable
from cllstr.data.loading.dataset import MixtureDataset
from cllstr.scripts import guess_script

__all__ = ["DaliLoader", "resolve_augment", "resolve_device", "str_pipeline"]

log = logging.getLogger(__name__)

_OUTPUTS = ["images", "index", "valid"]
_DEVICES = ("auto", "cpu", "gpu")


@pipeline_def(enable_conditionals=True)
def str_pipeline(
    source: LmdbBatchSource,
    *,
    device: str,
    img_h: int,
    img_w: int,
    keep_ratio: bool,
    rgb: bool,
    augment: AugmentConfig | None,
    interpolation: str,
    parallel: bool,
):
    """LMDB batch → decode → resize (+pad) → augment → normalise; outputs ``(images, index, valid)``.

    ``device`` is ``"gpu"`` (decode with ``"mixed"``, process on the GPU) or ``"cpu"``; the processing is the
    same plain functions of :mod:`cllstr.data.loading.dali.ops` either way.
    """
    encoded, index, valid = fn.external_source(
        source=source,
        num_outputs=3,
        batch=True,
        batch_info=True,
        parallel=parallel,
        dtype=[types.UINT8, types.INT64, types.UINT8],
        ndim=[1, 0, 0],
    )
    images = ops.decode(encoded, "mixed" if device == "gpu" else "cpu", rgb)
    crop = augment is not None and augment.crop and augment.p > 0
    region = ops.crop_region(*ops.image_size(encoded), augment) if keep_ratio or crop else None
    images = ops.resize(images, img_h, img_w, keep_ratio, interpolation, region)
    if augment is not None and augment.enabled:
        images = ops.augment(images, augment, img_h, img_w, rgb)
    return ops.normalize(images, 3 if rgb else 1), index, valid


def resolve_device(device: str) -> str:
    """``"auto"`` → ``"gpu"`` when CUDA is available, else ``"cpu"``; anything else is checked."""
    if device not in _DEVICES:
        raise ValueError(f"DALI device must be one of {_DEVICES}, got {device!r}")
    if device == "auto":
        return "gpu" if torch.cuda.is_available() else "cpu"
    if device == "gpu" and not torch.cuda.is_available():
        raise RuntimeError("DALI device 'gpu' asked for, but torch sees no CUDA device (use device='cpu')")
    return device


def resolve_augment(augment: bool | AugmentConfig | Augment | Mapping[str, Any] | None) -> AugmentConfig | None:
    """The DALI augmentation config for the loader's ``augment`` argument.

    ``True`` gives the default :class:`AugmentConfig`; a mapping is read with :meth:`AugmentConfig.from_dict`; a
    torch-path :class:`~cllstr.data.loading.augment.Augment` enables the DALI ops of the same names (``contrast``
    maps to ``color``) with its probability.
    """
    if augment is None or augment is False:
        return None
    if augment is True:
        return AugmentConfig()
    if isinstance(augment, AugmentConfig):
        return augment
    if isinstance(augment, Augment):
        names = {"contrast": "color"}
        wanted = {names.get(o, o) for o in augment.ops}
        toggles = ("crop", "rotate", "warp", "color", "blur", "noise", "jpeg", "invert")
        unknown = wanted - set(toggles)
        if unknown:
            raise ValueError(f"augmentation(s) {sorted(unknown)} have no DALI counterpart; known: {toggles}")
        return AugmentConfig(p=augment.p, **{t: t in wanted for t in toggles})
    if isinstance(augment, Mapping):
        return AugmentConfig.from_dict(dict(augment))
    raise TypeError(f"augment must be a bool, AugmentConfig, Augment or mapping, got {type(augment).__name__}")


def _summary(e: BaseException) -> str:
    """The informative line of a DALI error (its first lines are generic)."""
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    useful = [ln for ln in lines if "rror" in ln and not ln.startswith("Critical error")]
    return (useful or lines or [type(e).__name__])[-1][:300]


class DaliLoader:
    """Iterate :class:`~cllstr.data.loading.torch_backend.Batch` objects from a DALI pipeline, one epoch per ``iter()``.

    Args:
        dataset: The resolved mixture (labels, scripts, caps and filters come from it).
        plan: Which batches this rank reads in each epoch.
        pipeline_kwargs: Arguments of :func:`str_pipeline` besides ``source`` (device, sizes, augmentation, ...).
        pipe_kwargs: ``pipeline_def`` arguments (batch_size, num_threads, device_id, seed, py_num_workers, ...).
        mode: ``"L"`` or ``"RGB"``.
        validation: Source validation mode (``"header"`` or ``"full"``).
    """

    def __init__(
        self,
        dataset: MixtureDataset,
        plan: EpochPlan,
        pipeline_kwargs: dict[str, Any],
        pipe_kwargs: dict[str, Any],
        mode: str = "L",
        validation: str = "header",
    ) -> None:
        self.dataset = dataset
        self.table = RecordTable.from_mixture(dataset)
        self.plan = plan
        self.batch_size = plan.batch_size
        self.device = pipeline_kwargs["device"]
        self._pipeline_kwargs = pipeline_kwargs
        self._pipe_kwargs = pipe_kwargs
        self._mode = mode
        self._validation = validation
        self.epoch = 0
        self.num_corrupt = 0
        self.bad_indices: set[int] = set()
        self._iterator: DALIGenericIterator | None = None
        self._fresh = False
        self._in_epoch = False

    def __len__(self) -> int:
        return len(self.plan)

    def _build(self, validation: str, skip_batches: int = 0) -> None:
        """(Re)start the pipeline at ``self.epoch``, ``skip_batches`` into it."""
        self.close()
        source = LmdbBatchSource(
            self.table,
            self.plan,
            self._mode,
            validation,
            known_bad=frozenset(self.bad_indices),
            epoch_offset=self.epoch,
            skip_batches=skip_batches,
        )
        pipe = str_pipeline(source, **self._pipeline_kwargs, **self._pipe_kwargs)
        self._iterator = DALIGenericIterator([pipe], _OUTPUTS, auto_reset=False, prepare_first_batch=False)
        self._fresh = True

    def close(self) -> None:
        """Stop the pipeline and its Python workers."""
        if self._iterator is not None:
            pipes = self._iterator._pipes
            self._iterator = None
            for pipe in pipes:
                try:
                    pipe._shutdown()
                except RuntimeError as e:  # a pipeline that failed may refuse a clean shutdown
                    log.debug("DALI pipeline shutdown: %s", e)
                if pipe._py_pool is not None:  # stop the worker processes now, not at garbage collection
                    pipe._py_pool.close()

    def __del__(self) -> None:
        self.close()

    def _to_batch(self, out: dict[str, torch.Tensor]) -> Batch:
        valid = out["valid"].reshape(-1).numpy().astype(bool)
        index = out["index"].reshape(-1).numpy()
        images = out["images"]
        skipped = int((~valid).sum())
        if skipped:
            self.num_corrupt += skipped
            self.bad_indices.update(int(i) for i in index[~valid])
            self._count_in_datasets(index[~valid])
            keep = torch.from_numpy(valid).to(images.device)
            images, index = images[keep], index[valid]
        labels, scripts = [], []
        for i in index.tolist():
            ds = self.dataset.datasets[int(self.table.lmdb[i])]
            label = ds.label(int(self.table.local[i]))
            labels.append(label)
            scripts.append(ds.script or guess_script(label) or "")
        return Batch(images, labels, scripts, skipped)

    def _count_in_datasets(self, bad: np.ndarray) -> None:
        # Keep ``loader.dataset.num_corrupt`` meaningful for code written against the torch loader.
        for i in bad.tolist():
            ds = self.dataset.datasets[int(self.table.lmdb[i])]
            log.warning("%s: skipping corrupt image of record %d", ds.path, int(self.table.record[i]) + 1)
            counter = getattr(ds, "_corrupt", None)
            if counter is not None:
                with counter.get_lock():
                    counter.value += 1

    def __iter__(self) -> Iterator[Batch]:
        validation = self._validation
        if self._in_epoch:
            # The previous epoch was abandoned part-way (DALI cannot reset mid-epoch): count it and start afresh.
            self.epoch += 1
            self._build(validation)
        elif self._iterator is None:
            self._build(validation)
        elif not self._fresh:
            self._iterator.reset()
        self._fresh = False
        self._in_epoch = True
        delivered = 0
        rescued = False
        while True:
            try:
                out = next(self._iterator)[0]
            except StopIteration:
                break
            except RuntimeError as e:
                if rescued or validation == "full":
                    raise
                log.warning(
                    "DALI pipeline failed in epoch %d after %d batches (%s); rebuilding it to finish the epoch "
                    "with Pillow-validated images",
                    self.epoch,
                    delivered,
                    _summary(e),
                )
                rescued = True
                self._build("full", skip_batches=delivered)
                self._fresh = False
                continue
            delivered += 1
            yield self._to_batch(out)
        self.epoch += 1
        self._in_epoch = False
        if rescued:
            self._build(self._validation)

    def set_epoch(self, epoch: int, skip_batches: int = 0) -> None:
        """Make the next ``iter()`` run ``epoch`` from batch ``skip_batches`` (resuming); epochs advance by themselves.

        Skipped batches are not read or decoded.
        """
        if epoch != self.epoch or skip_batches or self._in_epoch:
            self.epoch = epoch
            self._in_epoch = False
            self._build(self._validation, skip_batches)
