"""What the host-side scripts the system tests run inside a test's namespace (frames.py, netns_send.py,
lwip_clients.py) share: command-line value parsers and the tap's attributes in sysfs."""
import argparse


def parse_mac(s):
    """A MAC address "52:54:00:12:34:56" (or "broadcast", "bcast") as 6 bytes; an argparse type."""
    if s in ("broadcast", "bcast", "ff:ff:ff:ff:ff:ff"):
        return b"\xff" * 6
    parts = s.split(":")
    if len(parts) != 6:
        raise argparse.ArgumentTypeError(f"bad MAC address '{s}'")
    try:
        return bytes(int(p, 16) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad MAC address '{s}'") from None


def bounded(kind, lo, hi):
    """An argparse type: `kind` (int, float) within lo..hi."""
    def conv(s):
        v = kind(s)
        if not lo <= v <= hi:
            raise argparse.ArgumentTypeError(f"{v} not in {lo}..{hi}")
        return v
    return conv


def iface_counter(iface, name):
    """/sys/class/net/IFACE/statistics/NAME, or None if the interface has gone."""
    try:
        with open(f"/sys/class/net/{iface}/statistics/{name}") as f:
            return int(f.read())
    except OSError:
        return None


def iface_mac(iface):
    with open(f"/sys/class/net/{iface}/address") as f:
        return parse_mac(f.read().strip())


def iface_mtu(iface):
    with open(f"/sys/class/net/{iface}/mtu") as f:
        return int(f.read())
