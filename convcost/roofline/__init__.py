"""Roofline predictions: device profiles (peak FLOP/s, bandwidth) and the time math."""

from __future__ import annotations

from convcost.roofline.apply import (
    DeviceLike,
    ModelRooflineTime,
    RooflineTime,
    apply_to_analysis,
    check_dtype,
    resolve_devices,
    with_roofline,
)
from convcost.roofline.devices import (
    DEFAULT_LOCAL_PROFILE,
    DTYPES,
    LOCAL_ID,
    LOCAL_PROFILE_ENV,
    MAX_DEVICE_FILE_BYTES,
    Device,
    DeviceError,
    device_to_json,
    device_to_toml,
    load_device_file,
    local_profile_path,
    resolve_device,
    shipped_devices,
    shipped_ids,
)
from convcost.roofline.predict import (
    LayerTime,
    ModelTime,
    layer_time,
    model_time,
    ridge_point,
)

__all__ = [
    "DEFAULT_LOCAL_PROFILE",
    "DTYPES",
    "LOCAL_ID",
    "LOCAL_PROFILE_ENV",
    "MAX_DEVICE_FILE_BYTES",
    "Device",
    "DeviceError",
    "DeviceLike",
    "LayerTime",
    "ModelRooflineTime",
    "ModelTime",
    "RooflineTime",
    "apply_to_analysis",
    "check_dtype",
    "device_to_json",
    "device_to_toml",
    "layer_time",
    "load_device_file",
    "local_profile_path",
    "model_time",
    "resolve_device",
    "resolve_devices",
    "ridge_point",
    "shipped_devices",
    "shipped_ids",
    "with_roofline",
]
