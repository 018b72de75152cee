"""Colour spaces: sRGB bytes <-> Oklab (Björn Ottosson's perceptual space).

Oklab values are scaled by 255 so that distances in either space have a similar
magnitude, which keeps one set of numeric tolerances valid for both.
"""

import numpy as np

SCALE = 255.0

_RGB_TO_LMS = np.array(
    [
        [0.4122214708, 0.5363325363, 0.0514459929],
        [0.2119034982, 0.6806995451, 0.1073969566],
        [0.0883024619, 0.2817188376, 0.6299787005],
    ]
)
_LMS_TO_LAB = np.array(
    [
        [0.2104542553, 0.7936177850, -0.0040720468],
        [1.9779984951, -2.4285922050, 0.4505937099],
        [0.0259040371, 0.7827717662, -0.8086757660],
    ]
)
_LAB_TO_LMS = np.linalg.inv(_LMS_TO_LAB)
_LMS_TO_RGB = np.linalg.inv(_RGB_TO_LMS)


def _decode_srgb(v):
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)


def _encode_srgb(v):
    v = np.clip(v, 0.0, 1.0)
    return np.where(v <= 0.0031308, 12.92 * v, 1.055 * v ** (1 / 2.4) - 0.055)


# Decoding each byte value once is much cheaper than decoding every colour.
_LINEAR = _decode_srgb(np.arange(256) / 255.0)


def srgb_to_oklab(rgb):
    """(N, 3) uint8 sRGB -> (N, 3) float32 Oklab, scaled by SCALE."""
    linear = _LINEAR[np.asarray(rgb, dtype=np.intp)]
    lms = np.cbrt(linear @ _RGB_TO_LMS.T)
    return (lms @ _LMS_TO_LAB.T * SCALE).astype(np.float32)


def oklab_to_srgb(lab):
    """(N, 3) Oklab scaled by SCALE -> (N, 3) float64 sRGB in 0..255 (not rounded)."""
    lms = (np.asarray(lab, dtype=np.float64) / SCALE) @ _LAB_TO_LMS.T
    return _encode_srgb(lms**3 @ _LMS_TO_RGB.T) * 255.0
