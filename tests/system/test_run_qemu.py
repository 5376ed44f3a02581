"""run-qemu.sh's own behaviour: option checking and the accelerator choice."""
import shlex
import subprocess

from conftest import ROOT


def run(*args):
    p = subprocess.run([str(ROOT / "run-qemu.sh"), *args], stdin=subprocess.DEVNULL, capture_output=True,
                       text=True, cwd=ROOT, timeout=60)
    return p.returncode, p.stdout, p.stderr


def test_unknown_option_is_named():
    rc, _, err = run("--frobnicate")
    assert rc == 2
    assert "unknown option '--frobnicate'" in err


def test_bad_values_are_named():
    for args, word in [(["--boot", "bios"], "--boot"), (["--accel", "xen"], "--accel"),
                       (["--net", "wifi"], "--net"), (["--mem", "lots"], "--mem"),
                       (["--timeout", "soon"], "--timeout"), (["--mem"], "--mem")]:
        rc, _, err = run(*args)
        assert rc == 2, args
        assert word in err, (args, err)


def test_dry_run_picks_tcg_where_kvm_cannot_run_guests():
    rc, out, _ = run("--dry-run", "--no-build", "--net", "none", "--cmdline", "test=boot")
    assert rc == 0
    out = " ".join(shlex.split(out))
    kvm_usable = False
    try:
        cpuinfo = open("/proc/cpuinfo").read()
        import os
        kvm_usable = (" vmx" in cpuinfo or " svm" in cpuinfo) and os.access("/dev/kvm", os.W_OK) \
            and not os.path.isdir("/sys/module/kvm_pvm")
    except OSError:
        pass
    assert ("-accel kvm" in out) == kvm_usable, out
    assert "-kernel" in out and "isa-debug-exit" in out


def test_dry_run_passes_trace_pcap_and_extra_args():
    rc, out, _ = run("--dry-run", "--no-build", "--trace", "virtqueue_flush,virtio_notify",
                     "--pcap", "/tmp/x.pcap", "--qemu-arg", "-icount", "--qemu-arg", "shift=0",
                     "--nic-opts", "event_idx=off")
    assert rc == 0
    out = " ".join(shlex.split(out))
    assert "-trace virtqueue_flush -trace virtio_notify" in out
    assert "filter-dump,id=dump0,netdev=net0,file=/tmp/x.pcap" in out
    assert "-icount shift=0" in out
    assert "disable-legacy=on,romfile=,event_idx=off" in out
