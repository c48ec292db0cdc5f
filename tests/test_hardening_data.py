"""Crafted and degenerate data files (issue 12, items 8 and 13): a DataError naming the file
before anything large is allocated, never a MemoryError or a data set a classifier cannot use."""

from __future__ import annotations

import gzip
import io
import zipfile
from pathlib import Path

import numpy as np
import pytest

from automnist.data import load_dataset
from automnist.data.formats import read_idx
from automnist.errors import DataError


def _npy(shape: tuple[int, ...], dtype: str = "<f4", payload: bytes = b"") -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": dtype, "fortran_order": False, "shape": shape})
    return buf.getvalue() + payload


def _zip(path: Path, members: dict[str, bytes], compress: int = zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", compress) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def test_npz_header_claiming_10_to_13_elements_is_refused_before_allocating(tmp_path: Path) -> None:
    path = _zip(tmp_path / "bomb.npz", {"x.npy": _npy((10**13,), payload=bytes(64)), "y.npy": _npy((4,), "<i8")})
    with pytest.raises(DataError, match=r"bomb.npz: corrupt npz file: x.npy claims shape \(10000000000000,\) "
                                        r"of float32 \(40000000000000 bytes\) but holds at most"):
        load_dataset(f"npz:{path}")


def test_npz_member_shorter_than_its_header_and_object_arrays(tmp_path: Path) -> None:
    short = _zip(tmp_path / "short.npz", {"x.npy": _npy((4, 2, 2), payload=bytes(20)), "y.npy": _npy((4,), "<i8")},
                 zipfile.ZIP_STORED)
    with pytest.raises(DataError, match=r"short.npz: corrupt npz file: x.npy claims shape \(4, 2, 2\)"):
        load_dataset(f"npz:{short}")
    objects = _zip(tmp_path / "obj.npz", {"x.npy": _npy((2,), "|O", bytes(16)), "y.npy": _npy((2,), "<i8", bytes(16))})
    with pytest.raises(DataError, match=r"obj.npz: unreadable npz file: ValueError: x.npy: object arrays"):
        load_dataset(f"npz:{objects}")


def test_idx_header_claiming_a_huge_array_plain_and_gzipped(tmp_path: Path) -> None:
    header = bytes.fromhex("00000803") + np.array([60000, 60000, 60000], dtype=">u4").tobytes()
    plain = tmp_path / "huge-idx3-ubyte"
    plain.write_bytes(header + bytes(100))
    with pytest.raises(DataError, match=r"huge-idx3-ubyte: truncated IDX file: shape \(60000, 60000, 60000\) "
                                        r"needs 216000000000000 data bytes, found 100"):
        read_idx(plain)
    gz = tmp_path / "huge-idx3-ubyte.gz"
    gz.write_bytes(gzip.compress(header + bytes(1000), mtime=0))
    with pytest.raises(DataError, match=r"needs 216000000000000 data bytes, found 1000"):
        read_idx(gz)


def test_a_gzip_bomb_behind_a_small_idx_header_is_not_decompressed_whole(tmp_path: Path) -> None:
    # 50 MB of zeros after a header claiming 10 bytes: refused after reading 11 bytes + counting
    path = tmp_path / "t-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(bytes.fromhex("00000801 0000000a") + bytes(50_000_000), mtime=0))
    with pytest.raises(DataError, match=r"corrupt IDX file: 49999990 bytes after the data of shape \(10,\)"):
        read_idx(path)


def _npz(path: Path, **arrays: np.ndarray) -> str:
    np.savez(path, **arrays)
    return f"npz:{path}"


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        (dict(x=np.zeros((6, 4, 4)), y=np.array([0, 1, np.nan, 1, 0, 1])), "labels contain NaN or infinite values"),
        (dict(x=np.zeros((6, 4, 4)), y=np.array([0, 1, np.inf, 1, 0, 1])), "labels contain NaN or infinite values"),
        (dict(x_train=np.zeros((0, 4, 4)), y_train=np.zeros(0, int), x_test=np.zeros((0, 4, 4)),
              y_test=np.zeros(0, int)), "no training images (0 in the file)"),
        (dict(x_train=np.zeros((4, 4, 4)), y_train=np.array([0, 1, 0, 1]), x_test=np.zeros((0, 4, 4)),
              y_test=np.zeros(0, int)), "no test images (0 in the file)"),
        (dict(x=np.zeros((0, 4, 4)), y=np.zeros(0, int)), "no training images"),
        (dict(x=np.zeros((6, 0, 0)), y=np.arange(6) % 2), r"images must be at least 1x1 with 1 channel, got shape (0, 0, 1)"),
        (dict(x=np.zeros((6, 4, 4, 0)), y=np.arange(6) % 2), "images must be at least 1x1"),
        (dict(x=np.zeros((6, 4, 4)), y=np.zeros(6, int)), "the training labels hold a single class"),
        (dict(x=np.zeros((6, 4, 4)), y=np.array(["cat"] * 6)), "the training labels hold a single class"),
        (dict(x=np.zeros((6, 4, 4)), y=np.zeros(6, complex)), "labels must be integers or text, got dtype complex128"),
    ],
    ids=["nan", "inf", "0-images", "0-test", "0-images-xy", "0x0", "0-channels", "one-class", "one-class-text",
         "complex-labels"],
)
def test_degenerate_npz_data_sets(tmp_path: Path, arrays: dict, message: str) -> None:
    name = _npz(tmp_path / "d.npz", **arrays)
    with pytest.raises(DataError) as info:
        load_dataset(name)
    assert message in str(info.value) and str(tmp_path / "d.npz") in str(info.value)


def test_zero_image_idx_set(tmp_path: Path) -> None:
    from automnist.data.formats import write_idx

    (tmp_path / "m").mkdir()
    write_idx(tmp_path / "m" / "train-images-idx3-ubyte", np.zeros((0, 28, 28), np.uint8))
    write_idx(tmp_path / "m" / "train-labels-idx1-ubyte", np.zeros(0, np.uint8))
    with pytest.raises(DataError, match="no training images"):
        load_dataset(f"idx:{tmp_path / 'm'}")


def test_two_classes_still_load(tmp_path: Path) -> None:
    ds = load_dataset(_npz(tmp_path / "ok.npz", x=np.zeros((10, 4, 4)), y=np.arange(10) % 2))
    assert ds.class_names == ("0", "1") and ds.input_shape == (4, 4, 1)
    assert len(ds.x_train) + len(ds.x_test) == 10


def test_images_too_wide_or_damaged_for_predict_give_a_data_error(tmp_path: Path) -> None:
    from PIL import Image

    from automnist.predict import prepare_image, read_image

    wide = tmp_path / "wide.png"
    Image.new("L", (50_000, 1)).save(wide)  # padded to a square it would need 2.5e9 pixels
    with pytest.raises(DataError, match=r"wide.png: image of 50000x1 pixels: sides must be from 1 to 10000"):
        read_image(wide)
    damaged = tmp_path / "damaged.png"
    buf = io.BytesIO()
    Image.new("RGB", (20, 20), "white").save(buf, format="PNG")
    damaged.write_bytes(buf.getvalue()[:60])
    with pytest.raises(DataError, match=r"damaged.png: cannot read the image"):
        read_image(damaged)
    ok = tmp_path / "ok.png"
    Image.new("RGB", (30, 20), "white").save(ok)
    assert prepare_image(read_image(ok), (8, 8, 1)).shape == (8, 8, 1)
