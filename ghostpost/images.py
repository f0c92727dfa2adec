"""Decoding and re-encoding of uploaded images (Pillow): the only way bytes become media.

Only JPEG, PNG, WebP and static GIF are decoded, recognised by their first bytes before Pillow
sees them (an SVG or HTML file named .png is refused by name, never handed to a decoder that
guesses). The image is turned upright by its EXIF orientation, then re-encoded from pixels
alone: EXIF (GPS included), XMP, ICC profiles and comments are not carried over.
"""

from __future__ import annotations

import hashlib
import io
import warnings

from PIL import Image, ImageOps

from ghostpost.domain.media_rules import (
    JPEG,
    MAX_DECODED_PIXELS,
    MAX_UPLOAD_BYTES,
    PNG,
    WEBP,
    CleanImage,
    ImageRefused,
)

#: Pillow's name of each format we decode, by how its file starts.
_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xd8\xff", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
)


def _sniff(data: bytes) -> str | None:
    for signature, name in _SIGNATURES:
        if data.startswith(signature):
            return name
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return None


def normalise(data: bytes) -> CleanImage:
    """Decode `data` as a JPEG, PNG, WebP or static GIF and return it re-encoded without
    metadata; raise ImageRefused with the reason otherwise."""
    if not data:
        raise ImageRefused("the file is empty")
    if len(data) > MAX_UPLOAD_BYTES:
        raise ImageRefused(f"the file is larger than {MAX_UPLOAD_BYTES} bytes")
    kind = _sniff(data)
    if kind is None:
        raise ImageRefused(
            "not a JPEG, PNG, WebP or GIF image (SVG, HTML and other files are refused "
            "whatever their name)"
        )
    with warnings.catch_warnings():
        # Pillow warns (and our tests turn warnings into errors) before its own hard limit.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data), formats=[kind]) as opened:
                width, height = opened.size
                if width * height > MAX_DECODED_PIXELS:
                    raise ImageRefused(
                        f"{width}x{height} pixels is more than ghostpost decodes "
                        f"({MAX_DECODED_PIXELS} pixels; a decompression bomb?)"
                    )
                if getattr(opened, "is_animated", False):
                    raise ImageRefused("animated images are not supported")
                opened.load()
                upright = ImageOps.exif_transpose(opened)
        except ImageRefused:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise ImageRefused(f"the image is too large to decode ({exc})") from None
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            raise ImageRefused(f"the {kind} image cannot be decoded ({exc})") from None
    return _encode(upright, kind)


def _encode(image: Image.Image, kind: str) -> CleanImage:
    # A fresh image of the pixels alone: nothing of `info` (exif, xmp, icc_profile, comment,
    # dpi) can be written out by a save that reads it.
    pixels = image.copy()
    pixels.info = {}
    out = io.BytesIO()
    if kind == "JPEG":
        if pixels.mode not in ("RGB", "L"):
            pixels = pixels.convert("RGB")
        pixels.save(out, format="JPEG", quality=90)
        mime = JPEG
    elif kind == "WEBP":
        if pixels.mode not in ("RGB", "RGBA"):
            pixels = pixels.convert("RGBA")
        pixels.save(out, format="WEBP", quality=90)
        mime = WEBP
    else:
        # PNG, and a static GIF stored as PNG (lossless; no GIF comment or extension blocks).
        if pixels.mode not in ("1", "L", "LA", "P", "RGB", "RGBA", "I;16"):
            pixels = pixels.convert("RGBA")
        pixels.save(out, format="PNG")
        mime = PNG
    data = out.getvalue()
    return CleanImage(
        data=data,
        mime_type=mime,
        width=pixels.width,
        height=pixels.height,
        content_hash=hashlib.sha256(data).hexdigest(),
    )
