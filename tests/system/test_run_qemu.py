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


def kvm_usable(*args):
    """tools/kvm-usable.sh, the one KVM check both launch scripts use: (exit status, stdout words)."""
    p = subprocess.run([str(ROOT / "tools" / "kvm-usable.sh"), *args], stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=30)
    return p.returncode, p.stdout.split()


def test_kvm_usable_answers_with_its_status():
    rc, words = kvm_usable()
    assert (rc, words) in [(0, ["kvm"]), (1, ["tcg"])]
    assert kvm_usable("--accel", "tcg") == (0, ["tcg", "max", "1,maxcpus=2"])
    assert kvm_usable("--accel", "auto") == (0, ["kvm", "host", "1"] if rc == 0 else ["tcg", "max", "1,maxcpus=2"])
    assert kvm_usable("--accel", "xen")[0] == 2


def test_dry_run_accelerator_agrees_with_kvm_usable():
    """Both launch scripts take auto to mean what tools/kvm-usable.sh answers here."""
    _, (accel, cpu, smp) = kvm_usable("--accel", "auto")
    want = f"-accel {accel} -cpu {cpu} -smp {smp}"
    rc, out, _ = run("--dry-run", "--no-build", "--net", "none", "--cmdline", "test=boot")
    assert rc == 0
    out = " ".join(shlex.split(out))
    assert want in out, out
    assert "-kernel" in out and "isa-debug-exit" in out
    p = subprocess.run([str(ROOT / "bench" / "linux" / "run.sh"), "--dry-run"], stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert p.returncode == 0, p.stderr
    assert want in " ".join(shlex.split(p.stdout)), p.stdout


def machine_arg(out):
    words = shlex.split(out)
    return words[words.index("-machine") + 1]


def test_q35_leaves_out_sata_and_smbus_unless_asked():
    """Both launch scripts give QEMU the same q35, without the SATA and SMBus functions a network guest never
    uses; a key the user sets is kept as given, and other machines are passed through untouched."""
    cases = [((), "q35,sata=off,smbus=off"), (("--machine", "q35,sata=on"), "q35,sata=on,smbus=off"),
             (("--machine", "q35,acpi=off,smbus=on"), "q35,acpi=off,smbus=on,sata=off"),
             (("--machine", "microvm,pcie=on"), "microvm,pcie=on"),
             (("--boot", "uefi"), "q35,smbus=off")]  # the ESP is a disk on the SATA controller
    for args, want in cases:
        rc, out, err = run("--dry-run", "--no-build", "--net", "none", *args)
        assert rc == 0, err
        assert machine_arg(out) == want, (args, out)
    p = subprocess.run([str(ROOT / "bench" / "linux" / "run.sh"), "--dry-run"], stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert machine_arg(p.stdout) == "q35,sata=off,smbus=off", p.stdout


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


def test_first_command_builds_before_looking_for_qemu(tmp_path):
    """README's first command on a fresh machine (issue 13): `./run-qemu.sh` must run the build (which
    installs the Debian packages as root, or prints the apt-get line) before it looks for QEMU; it used to stop
    at "'qemu-system-x86_64' not found" first. Simulated with a PATH that has every host tool but QEMU, and a
    `make` that only records that it ran."""
    import os
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for d in ("/usr/local/bin", "/usr/bin", "/bin", "/usr/sbin", "/sbin"):
        if not os.path.isdir(d):
            continue
        for name in os.listdir(d):
            if name in ("qemu-system-x86_64", "make") or (bindir / name).exists():
                continue
            (bindir / name).symlink_to(os.path.join(d, name))
    marker = tmp_path / "make-ran"
    (bindir / "make").write_text(f"#!/bin/sh\necho \"$@\" > {marker}\n")
    (bindir / "make").chmod(0o755)
    p = subprocess.run([str(ROOT / "run-qemu.sh"), "--net", "none", "--timeout", "5"], stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, cwd=ROOT, timeout=60,
                       env={**os.environ, "PATH": str(bindir)})
    assert marker.exists(), p.stderr
    assert "all" in marker.read_text().split()
    assert p.returncode == 2 and "'qemu-system-x86_64' not found" in p.stderr, p.stderr
