"""The systemd unit: verifies cleanly and is hardened (exposure <= 2.5)."""
import re
import shutil
import subprocess
import sys

from conftest import ROOT, need


def unit(tmp_path):
    text = subprocess.run([sys.executable, str(ROOT / "server.py"), "--print-systemd-unit"], capture_output=True,
                          text=True, check=True).stdout
    path = tmp_path / "datacap.service"
    path.write_text(text)
    return path, text


def test_printed_unit_has_absolute_paths_and_stop_order(tmp_path):
    path, text = unit(tmp_path)
    assert not re.search(r"@(PYTHON|HERE|PROTECT_HOME)@", text)
    assert f"ExecStart={sys.executable} {ROOT}/server.py" in text
    assert "KillMode=mixed" in text and "Restart=on-failure" in text
    assert int(re.search(r"TimeoutStopSec=(\d+)", text).group(1)) > 7  # server grace: 5 s + reaping


def test_systemd_analyze_verify_is_clean(tmp_path):
    need(shutil.which("systemd-analyze"), "systemd-analyze is not installed (apt-get install systemd)")
    path, _ = unit(tmp_path)
    r = subprocess.run(["systemd-analyze", "verify", "--recursive-errors=yes", str(path)], capture_output=True, text=True)
    assert r.returncode == 0 and r.stderr.strip() == "", r.stderr


def test_systemd_analyze_security_exposure_is_at_most_2_5(tmp_path):
    need(shutil.which("systemd-analyze"), "systemd-analyze is not installed (apt-get install systemd)")
    path, _ = unit(tmp_path)
    r = subprocess.run(["systemd-analyze", "security", "--offline=yes", str(path)], capture_output=True, text=True)
    exposure = float(re.search(r"Overall exposure level for \S+: ([\d.]+)", r.stdout).group(1))
    assert exposure <= 2.5, r.stdout[-2000:]
