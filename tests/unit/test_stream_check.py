"""tests/system/lwip_clients.py tcp-stream's checker: the echo of a generated sequence is compared as it
arrives, in pieces of any size, and the first wrong, missing-then-extra or surplus byte is located."""
import pathlib
import random
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "tests" / "system"))
from lwip_clients import StreamCheck, stream_chunks  # noqa: E402

SEED, NBYTES, CHUNK = 5, 300_000, 4096


def sequence():
    return b"".join(stream_chunks(SEED, NBYTES, CHUNK))


def feed(data, rng):
    """Feeds data in random-sized pieces (as recv() returns them); the checker."""
    c = StreamCheck(SEED, NBYTES, CHUNK)
    pos = 0
    while pos < len(data):
        n = rng.randint(1, 70_000)
        c.feed(data[pos:pos + n])
        pos += n
    return c


def test_sequence_is_reproducible_and_sized():
    a, b = sequence(), sequence()
    assert a == b and len(a) == NBYTES
    assert b"".join(stream_chunks(SEED + 1, NBYTES, CHUNK)) != a


@pytest.mark.parametrize("seed", range(5))
def test_intact_echo_matches(seed):
    c = feed(sequence(), random.Random(seed))
    assert c.first_diff is None and c.seen == NBYTES


@pytest.mark.parametrize("where", [0, 1, CHUNK - 1, CHUNK, 123_457, NBYTES - 1])
def test_one_flipped_byte_is_located(where):
    data = bytearray(sequence())
    data[where] ^= 0x40
    assert feed(bytes(data), random.Random(where)).first_diff == where


def test_surplus_bytes_are_located():
    assert feed(sequence() + b"x", random.Random(1)).first_diff == NBYTES


def test_lost_bytes_are_located():
    data = sequence()
    # 100 bytes missing at 5000: the first difference is there (unless the bytes happen to repeat).
    assert feed(data[:5000] + data[5100:], random.Random(2)).first_diff == 5000
