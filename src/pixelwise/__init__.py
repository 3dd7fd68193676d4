"""pixelwise: image segmentation as pixel classification on PyTorch.

Public API::

    fit(data, out=..., **train_options) -> best.pt   evaluate_checkpoint(path, data) -> metrics
    create_model(name, **kwargs)   list_models()   load_model(path)   predict(model, image)
    predict_probabilities(model, image) -> (H, W, K)  segment(model, image) -> instance labels
    predict_slide(model, tiff, out)   segment_slide(model, tiff, out)   (a TIFF of any size,
    region by region, into a TIFF of class ids / instance labels)
    remove_background(image) -> RGBA
"""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = [
    "fit",
    "evaluate_checkpoint",
    "create_model",
    "list_models",
    "load_model",
    "predict",
    "predict_probabilities",
    "predict_slide",
    "segment",
    "segment_slide",
    "expand_cells",
    "remove_background",
    "to_geojson",
    "__version__",
]

# Imported lazily so that `pixelwise --version` does not pay for importing torch.
_LAZY = {
    "fit": "pixelwise.train",
    "evaluate_checkpoint": "pixelwise.evaluate",
    "create_model": "pixelwise.models",
    "list_models": "pixelwise.models",
    "load_model": "pixelwise.checkpoint",
    "predict": "pixelwise.inference",
    "predict_probabilities": "pixelwise.inference",
    "predict_slide": "pixelwise.inference",
    "segment": "pixelwise.inference",
    "segment_slide": "pixelwise.inference",
    "expand_cells": "pixelwise.instances",
    "remove_background": "pixelwise.cutout",
    "to_geojson": "pixelwise.data.geojson",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'pixelwise' has no attribute {name!r}")


def __dir__() -> list[str]:
    """The public API too, for tab completion (it is imported lazily)."""
    return sorted(set(globals()) | set(__all__))
