"""Build the model from its validated options; sources, sinks and trackers are built by
their own layers (``sources.factory``, ``sinks.factory``, ``pipeline.track.factory``)."""

from __future__ import annotations

from pipeline.core.errors import ModelError
from pipeline.infer.backends.onnxruntime import GpuSettings
from pipeline.infer.config import ModelConfig
from pipeline.infer.model import Model
from pipeline.infer.postprocess import PostprocessOptions
from pipeline.zoo import resolve_model


def postprocess_options(cfg: ModelConfig) -> PostprocessOptions:
    p = cfg.postprocess
    return PostprocessOptions(
        confidence=p.confidence, iou_threshold=p.iou_threshold, class_agnostic_nms=p.class_agnostic_nms,
        max_detections=p.max_detections, max_candidates=p.max_candidates,
        class_filter=tuple(p.class_filter) if p.class_filter is not None else None,
        mask_decode_mode=p.mask_decode_mode, tradeoff_factor=p.tradeoff_factor, max_area_ratio=p.max_area_ratio,
        device=p.device,
    )


def build_model(cfg: ModelConfig, max_batch_size: int = 1) -> Model:
    path = resolve_model(cfg.path)
    gpu = GpuSettings(device_id=cfg.device_id, fp16=cfg.fp16, engine_cache_dir=cfg.engine_cache_dir,
                      workspace_gb=cfg.workspace_gb, max_batch_size=max_batch_size)
    try:
        options = postprocess_options(cfg)
        model = Model.load(path, cfg.providers, cfg.intra_op_threads, cfg.inter_op_threads, options,
                           cfg.names_file, cfg.layout, backend=cfg.backend, gpu=gpu, io_binding=cfg.io_binding)
    except ValueError as exc:  # e.g. class_filter names the model does not have
        raise ModelError(f"model {path}: {exc}") from exc
    if cfg.name:
        model.name = cfg.name
    return model


