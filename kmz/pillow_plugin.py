"""The .kmz format as a Pillow plugin, registered by `import kmz`:

    Image.open("x.kmz")          # reads the header and the palette; the pixels when needed
    im.verify()                  # checks the length and the CRC-32, decoding nothing
    im.save("x.kmz", k=64)       # any keyword kmz.encode takes: k, seed, psnr, ...
    im.save("x.kmz", save_all=True)  # one frame only: more are refused (ValueError)

An image with K <= 256 opens in mode P with the palette (an RGBA palette for an RGBA
file, as a PNG with tRNS opens), in .palette before load(); a larger one in mode RGB,
or RGBA for an RGBA file. A file cut short before its palette ends has none until
load(), which raises the error.
Saving keeps an image's transparency (pass background= to flatten it).
A file that is not .kmz is left to other plugins (so Pillow raises
UnidentifiedImageError); a damaged one raises DamagedImageError, an OSError whose
__cause__ is the specific kmz error; one over twice kmz.MAX_IMAGE_PIXELS raises
Pillow's DecompressionBombError, whose __cause__ is the PixelLimitError.
"""

import inspect

import numpy as np
from PIL import Image, ImageFile, ImagePalette

from . import entropy
from . import format as fmt
from .errors import DamagedImageError, FormatError, LengthError, PixelLimitError, SignatureError
from .image import encode, frombytes

FORMAT = "KMZ"
# Save keywords handed to kmz.encode: whatever it accepts except the image itself and
# the progress callback, so options added to encode work here without a change.
_SAVE_OPTIONS = frozenset(inspect.signature(encode).parameters) - {"image", "progress"}
# What Image.open reads of a mix payload at first, beyond C*K bytes: a coded palette
# measured 0.7 C*K bytes (a photo's, K = 256) to C*K + 24 (random entries), so one
# read holds it.
_MIX_PALETTE_MARGIN = 64


def _accept(prefix):
    return prefix[: len(fmt.SIGNATURE)] == fmt.SIGNATURE


def _damaged(error):
    return DamagedImageError(f"damaged .kmz file: {error}")


class KmzImageFile(ImageFile.ImageFile):
    format = FORMAT
    format_description = "kmz k-means quantized image"

    def _open(self):
        start = self.fp.tell()
        try:
            header = fmt.read_header(self.fp.read(fmt.HEADER_SIZE))
        except SignatureError as e:
            raise SyntaxError(str(e)) from e  # not ours: Pillow tries the other formats
        except FormatError as e:
            raise _damaged(e) from e
        self._size = (header.width, header.height)
        self._mode = "P" if header.k <= 256 else "RGBA" if header.alpha else "RGB"
        self.info["k"] = header.k
        if self.mode == "P" and (entries := self._read_palette(header)) is not None:
            self.palette = ImagePalette.ImagePalette("RGBA" if header.alpha else "RGB", entries)
            self.palette.dirty = 1  # load() puts it in the pixel memory, as for a PNG's
        self.tile = [ImageFile._Tile(FORMAT, (0, 0, *self._size), start)]

    def _read_palette(self, header):
        """The palette's bytes, read from the file just past the header; None when the
        file ends first (or a mix palette does not decode): load() then says why."""
        size = header.channels * header.k
        if header.coding != fmt.CODING_MIX:
            entries = self.fp.read(size)
            return entries if len(entries) == size else None
        # A mix payload codes the palette first: read until it decodes.
        payload, wanted = b"", size + _MIX_PALETTE_MARGIN
        while True:
            more = self.fp.read(wanted - len(payload))
            payload += more
            try:
                return entropy.decode_palette(payload, (header.k, header.channels), *self._size).tobytes()
            except LengthError:
                if len(payload) < wanted:  # the file ended
                    return None
                wanted *= 2
            except FormatError:
                return None

    def verify(self):
        """Check the file's length and CRC-32 without decoding the pixels, as Pillow's
        PNG plugin checks its chunks' CRCs: a damaged file raises DamagedImageError.
        As with any Pillow image, call it right after open; it closes the file."""
        if self.fp is None:
            raise RuntimeError("verify must be called directly after open")
        self.fp.seek(self.tile[0].offset)
        data = self.fp.read()
        try:
            fmt.check_length(fmt.read_header(data), len(data))
            fmt.check_checksum(data)
        except FormatError as e:
            raise _damaged(e) from e
        super().verify()


class KmzDecoder(ImageFile.PyDecoder):
    """Decodes the whole file (from the header on) with kmz's own checks."""

    _pulls_fd = True

    def decode(self, buffer):
        try:
            image = frombytes(self.fd.read())
        except PixelLimitError as e:
            # Not damage: an image over kmz's limit gets the error Pillow raises for one
            # over its own, which Pillow users catch.
            raise Image.DecompressionBombError(str(e)) from e
        except FormatError as e:
            raise _damaged(e) from e
        if self.mode == "P":  # the palette, read at open, is in the pixel memory already
            self.set_as_raw(image.indices.astype(np.uint8).tobytes())
        else:
            self.set_as_raw(image.to_array().tobytes())
        return -1, 0


def _save(im, fp, filename):
    options = {key: value for key, value in im.encoderinfo.items() if key in _SAVE_OPTIONS}
    fp.write(encode(im, **options).tobytes())


def _save_all(im, fp, filename):
    # A .kmz file holds one image: one frame saves as save() would, more are refused
    # rather than all but one dropped.
    frames = getattr(im, "n_frames", 1) + len(im.encoderinfo.get("append_images", []))
    if frames > 1:
        raise ValueError(f"a .kmz file holds one image, not {frames} frames (save one frame, without save_all)")
    _save(im, fp, filename)


Image.register_open(FORMAT, KmzImageFile, _accept)
Image.register_decoder(FORMAT, KmzDecoder)
Image.register_save(FORMAT, _save)
Image.register_save_all(FORMAT, _save_all)
Image.register_extension(FORMAT, ".kmz")
Image.register_mime(FORMAT, "image/x-kmz")
