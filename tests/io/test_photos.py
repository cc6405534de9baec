"""Every kind of file a user may point us at: read right, or refused in one line."""

import io

import numpy as np
import pytest
from PIL import Image

from deepinside import ImageError
from deepinside.io import expand_paths, load_photo


@pytest.fixture
def rgb() -> Image.Image:
    gradient = np.linspace(0, 255, 64, dtype=np.uint8)
    a = np.stack(
        [np.tile(gradient, (48, 1)), np.tile(gradient[::-1], (48, 1)), np.full((48, 64), 90, np.uint8)], -1
    )
    return Image.fromarray(a, "RGB")


def test_rgb_jpeg(tmp_path, rgb):
    rgb.save(tmp_path / "a.jpg", quality=95)
    out = load_photo(tmp_path / "a.jpg")
    assert out.mode == "RGB" and out.size == (64, 48)


def test_greyscale_png_becomes_equal_channels(tmp_path, rgb):
    rgb.convert("L").save(tmp_path / "g.png")
    a = np.asarray(load_photo(tmp_path / "g.png"))
    assert a.shape == (48, 64, 3) and (a[..., 0] == a[..., 1]).all() and (a[..., 1] == a[..., 2]).all()


def test_sixteen_bit_png_keeps_its_range(tmp_path):
    values = np.linspace(0, 65535, 64).astype(np.uint16)
    Image.fromarray(np.tile(values, (8, 1))).save(tmp_path / "deep.png")
    with Image.open(tmp_path / "deep.png") as raw:
        assert raw.mode.startswith("I")
    a = np.asarray(load_photo(tmp_path / "deep.png"))[..., 0]
    assert a[0, 0] == 0 and a[0, -1] == 255 and 120 <= a[0, 32] <= 135  # not clipped to white


def test_rgba_is_composited_on_white(tmp_path):
    a = np.zeros((4, 4, 4), np.uint8)
    a[..., 0] = 200
    a[:2, :, 3] = 255  # top half opaque red, bottom half fully transparent
    Image.fromarray(a, "RGBA").save(tmp_path / "t.png")
    out = np.asarray(load_photo(tmp_path / "t.png"))
    assert tuple(out[0, 0]) == (200, 0, 0) and tuple(out[3, 3]) == (255, 255, 255)


def test_palette_png_with_transparency(tmp_path, rgb):
    p = rgb.convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    p.info["transparency"] = 0
    p.save(tmp_path / "p.png", transparency=0)
    assert load_photo(tmp_path / "p.png").mode == "RGB"


def test_cmyk_jpeg_converts_to_the_right_colours(tmp_path):
    Image.new("CMYK", (16, 16), (0, 255, 255, 0)).save(tmp_path / "c.jpg", quality=100)  # pure red ink
    r, g, b = np.asarray(load_photo(tmp_path / "c.jpg"))[8, 8].astype(int)
    assert r > 200 and g < 50 and b < 50


def test_exif_orientation_is_respected(tmp_path, rgb):
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    rgb.save(tmp_path / "r.jpg", exif=exif)
    assert load_photo(tmp_path / "r.jpg").size == (48, 64)


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "empty file"),
        (b"hello, not an image\n", "not an image"),
        (b"\x89PNG\r\n\x1a\n" + b"\0" * 40, "damaged|not an image"),
    ],
)
def test_unreadable_files(tmp_path, content, message):
    path = tmp_path / "bad.jpg"
    path.write_bytes(content)
    with pytest.raises(ImageError, match=message):
        load_photo(path)


def test_truncated_jpeg(tmp_path, rgb):
    buf = io.BytesIO()
    rgb.resize((640, 480)).save(buf, "JPEG")
    (tmp_path / "cut.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(ImageError, match="cut.jpg: damaged or truncated"):
        load_photo(tmp_path / "cut.jpg")


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(ImageError, match="no such file"):
        load_photo(tmp_path / "nope.png")
    with pytest.raises(ImageError, match="is a folder"):
        load_photo(tmp_path)


def _png_header_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims a huge size; the size check must refuse it
    before any pixel data is read (the data here is not even valid)."""
    import struct
    import zlib

    def chunk(tag: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", b"\0" * 16) + chunk(b"IEND", b"")


def test_decompression_bomb_is_refused_before_decoding(tmp_path):
    (tmp_path / "bomb.png").write_bytes(_png_header_claiming(12000, 10000))
    with pytest.raises(ImageError, match="12000x10000 is 120 megapixels, over the limit of 89"):
        load_photo(tmp_path / "bomb.png")
    with pytest.raises(ImageError, match="over the limit of 10"):
        load_photo(tmp_path / "bomb.png", max_pixels=10_000_000)
    (tmp_path / "huge.png").write_bytes(_png_header_claiming(30000, 30000))
    with pytest.raises(ImageError, match="huge.png: 30000x30000 is 900 megapixels"):
        load_photo(tmp_path / "huge.png")
    # A raised limit is ours to raise, past Pillow's own ceiling (179 MP): this
    # header then passes, and its missing pixel data is what fails.
    (tmp_path / "big.png").write_bytes(_png_header_claiming(20000, 10000))
    with pytest.raises(ImageError, match="big.png: damaged or truncated"):
        load_photo(tmp_path / "big.png", max_pixels=300_000_000)


def test_folder_expansion_takes_image_suffixes_only(tmp_path, rgb):
    (tmp_path / "sub").mkdir()
    rgb.save(tmp_path / "sub" / "b.png")
    rgb.save(tmp_path / "a.jpg")
    rgb.save(tmp_path / "C.JPEG")
    for other in ("notes.txt", "model.py", "model.pyc", "maps.npy", "meta.xml"):
        (tmp_path / other).write_text("hi")
    (tmp_path / ".hidden.png").write_text("x")
    names = [p.relative_to(tmp_path).as_posix() for p in expand_paths([tmp_path])]
    assert names == ["C.JPEG", "a.jpg", "sub/b.png"]
    # a file named explicitly is tried whatever its suffix
    assert list(expand_paths([tmp_path / "notes.txt"])) == [tmp_path / "notes.txt"]


def test_folder_expansion_skips_hidden_folders(tmp_path, rgb):
    for folder in ("shown", ".cache", "shown/.git"):
        (tmp_path / folder).mkdir(parents=True, exist_ok=True)
        rgb.save(tmp_path / folder / "a.png")
    assert list(expand_paths([tmp_path])) == [tmp_path / "shown" / "a.png"]
