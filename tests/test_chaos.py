"""bench/chaos.py for 3 minutes: the cycle figure under a random schedule of faults, local, SNMP and UPnP (root).

The printed seed reproduces a failing run: `sudo python bench/chaos.py --minutes 3 --seed N`.
"""
import random
import sys

from conftest import ROOT, have_root_networking, need

sys.path.insert(0, str(ROOT / "bench"))
import chaos  # noqa: E402


def test_three_minutes_of_faults_leave_every_cycle_figure_exact_never_down_never_ahead(tmp_path):
    need(have_root_networking(), "needs root and iproute2 for the household namespaces")
    for tool in ("snmpd", "miniupnpd", "curl"):
        need(chaos.netns.sh("which", tool, check=False).returncode == 0, f"needs Debian's {tool}")
    seed = random.randrange(1 << 30)
    print(f"chaos seed {seed}")
    results, errors = chaos.soak(chaos.MODES, seed, 3, "80mbit", tmp_path)
    assert not errors, f"seed {seed}: {errors}"
    for mode, r in results.items():
        print(f"{mode}: {r}")
    bad = {m: r for m, r in results.items() if not chaos.verdict(r)}
    assert not bad, f"seed {seed}: {bad}"
    assert all(r["moved_bytes"] > 500_000_000 and sum(r["faults"].values()) >= 5 for r in results.values())
