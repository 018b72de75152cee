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


# RGBA and the composite metric. A pixel (C, alpha) shows as C·a over black and
# C·a + 255(1 - a) over white (a = alpha/255). With p = C·a and A = alpha, an error
# (e_p per channel, e_A) shows as e_p over black and e_p - e_A over white; the mean of
# the two squared errors, summed over the channels, is
#     sum_c (e_c^2 + (e_c - e_A)^2) / 2 = sum_c (e_c - e_A/2)^2 + (3/4) e_A^2,
# a squared Euclidean distance in the coordinates u_c = p_c - A/2 = a(C - 127.5) and
# v = (sqrt(3)/2) A. k-means there minimises the composite error exactly. A fully
# transparent pixel is the origin whatever its colour.
_V_SCALE = np.sqrt(3.0) / 2.0


def rgba_to_composite(rgba):
    """(N, 4) uint8 straight RGBA -> (N, 4) float32 (u_R, u_G, u_B, v)."""
    rgba = np.asarray(rgba)
    alpha = rgba[:, 3:].astype(np.float64)
    # In float64, each product rounded once into the float32 result: no (N, 4) float64
    # temporaries to stack and convert (this runs on every distinct colour of an image).
    points = np.empty((len(rgba), 4), dtype=np.float32)
    np.multiply(alpha / 255.0, rgba[:, :3] - 127.5, out=points[:, :3], casting="same_kind")
    np.multiply(_V_SCALE, alpha, out=points[:, 3:], casting="same_kind")
    return points


def composite_to_rgba(points):
    """(N, 4) composite coordinates -> (N, 4) uint8 straight RGBA, the nearest bytes:
    alpha rounded first, then each channel's best value for that alpha (the centre's
    u + A'/2, divided by a'). An alpha of 0 gives (0, 0, 0, 0)."""
    points = np.asarray(points, dtype=np.float64)
    alpha = np.clip(np.rint(points[:, 3:] / _V_SCALE), 0, 255)
    with np.errstate(divide="ignore", invalid="ignore"):
        rgb = np.where(alpha > 0, points[:, :3] * 255.0 / alpha + 127.5, 0.0)
    return np.hstack([np.clip(np.rint(rgb), 0, 255), alpha]).astype(np.uint8)
