"""Each answer of an inference route made the caller's: coordinates scaled back to the
image as the caller gave it (when the client shrank it), and the server's visualisation
as base64, a BGR array or a PIL image.

Example:
    >>> p = {"image": {"width": 320, "height": 240},
    ...      "predictions": [{"x": 10.0, "y": 20.0, "width": 4.0, "height": 8.0, "points": [{"x": 1.0, "y": 2.0}]}]}
    >>> out = scale_back(p, 0.5)
    >>> out["image"], out["predictions"][0]["x"], out["predictions"][0]["points"]
    ({'width': 640, 'height': 480}, 20.0, [{'x': 2.0, 'y': 4.0}])
"""

from __future__ import annotations

import base64
import io
from typing import Any

from pipeline.client.images import decode_image

_POINT_KEYS = ("points", "keypoints")


def scale_back(prediction: dict[str, Any], scale: float | None) -> dict[str, Any]:
    """``prediction`` (in place) in the coordinates of the image before it was shrunk by
    ``scale``: the image size, boxes (centre, size), polygon points and keypoints.
    Predictions with a raster mask (``rle``) keep the grid the server saw: the mask
    cannot be rescaled exactly, so a caller needing exact masks leaves downsizing off."""
    if scale is None:
        return prediction
    image = prediction.get("image")
    if isinstance(image, dict) and "width" in image and "height" in image:
        prediction["image"] = {**image, "width": round(image["width"] / scale), "height": round(image["height"] / scale)}
    predictions = prediction.get("predictions")
    if not isinstance(predictions, list):
        return prediction  # a classification's dict, or a semantic map: no coordinates
    for p in predictions:
        if not isinstance(p, dict):
            continue
        for key in ("x", "y", "width", "height"):
            if isinstance(p.get(key), (int, float)):
                p[key] = p[key] / scale
        for key in _POINT_KEYS:
            for point in p.get(key) or ():
                point["x"], point["y"] = point["x"] / scale, point["y"] / scale
    return prediction


def convert_visualisation(prediction: dict[str, Any], output_format: str) -> dict[str, Any]:
    """``prediction["visualization"]`` (base64 JPEG from the server) as ``output_format``
    asks: base64 (as sent), numpy (BGR array) or pillow (PIL image)."""
    vis = prediction.get("visualization")
    if not isinstance(vis, str) or output_format == "base64":
        return prediction
    data = base64.b64decode(vis)
    if output_format == "numpy":
        prediction["visualization"] = decode_image(data, "the server's visualization")
    else:
        from PIL import Image  # only callers asking for PIL images pay for importing it

        prediction["visualization"] = Image.open(io.BytesIO(data))
    return prediction


def finish(prediction: Any, scale: float | None, output_format: str) -> Any:
    """One answer scaled back and its visualisation converted."""
    if not isinstance(prediction, dict):
        return prediction
    return convert_visualisation(scale_back(prediction, scale), output_format)
