"""Rebuild the bundled samples (run from the project root, with ../shared/corpus beside it).

    python samples/make_samples.py

kodim03.png: Kodak image 3 cropped to 4:3 at its centre and downscaled to 256 x 192.
shapes.png: a flat-colour graphic drawn here, 6 colours, no anti-aliasing.
"""

from pathlib import Path

from PIL import Image, ImageDraw

HERE = Path(__file__).resolve().parent
KODAK = HERE.parent.parent / "shared" / "corpus" / "kodak" / "kodim03.png"


def kodim03():
    with Image.open(KODAK) as image:
        image = image.convert("RGB")
        width, height = image.size  # 768 x 512
        crop = height * 4 // 3
        left = (width - crop) // 2
        image = image.crop((left, 0, left + crop, height))
        return image.resize((256, 192), Image.Resampling.LANCZOS)


def shapes():
    image = Image.new("RGB", (160, 120), (250, 246, 230))
    draw = ImageDraw.Draw(image)
    draw.rectangle((10, 10, 69, 59), fill=(200, 30, 45))
    draw.ellipse((80, 12, 149, 81), fill=(30, 90, 180))
    draw.polygon([(20, 110), (60, 70), (100, 110)], fill=(40, 150, 70))
    draw.rectangle((105, 90, 150, 110), fill=(245, 190, 20))
    draw.line((0, 65, 159, 65), fill=(20, 20, 20), width=3)
    return image


if __name__ == "__main__":
    kodim03().save(HERE / "kodim03.png", optimize=True)
    shapes().save(HERE / "shapes.png", optimize=True)
