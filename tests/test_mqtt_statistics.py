"""What Home Assistant's long-term statistics make of datacap's usage sensors (Debian's mosquitto on loopback).

Home Assistant itself does not run here; its statistics rule for a sensor's sum is reproduced below from
homeassistant/components/sensor/recorder.py (compile_statistics), and fed the states and the discovery
config datacap actually published to the broker.
"""
import json

import requests

from harness import wait_for
from test_mqtt import BASE, NODE, broker, sub  # noqa: F401 - fixtures

GB = 10 ** 9


def ha_statistics(states, state_class):
    """(sum, state) Home Assistant's recorder compiles from [(value, last_reset)] of a sensor with a sum."""
    last_reset = old_last_reset = None
    new_state = old_state = None
    total = 0.0
    for fstate, reset_at in states:
        reset = False
        if state_class != "total_increasing" and reset_at is not None and reset_at != old_last_reset:
            last_reset, reset = reset_at, True
        elif old_state is None and last_reset is None:
            reset = True
        elif state_class == "total_increasing" and fstate < 0.9 * new_state:  # reset_detected()
            reset = True
        if reset:
            if old_state is not None and new_state is not None:
                total += new_state - old_state
            new_state, old_last_reset = fstate, last_reset
            old_state = 0.0 if old_state is not None else new_state
        else:
            new_state = fstate
    return total + new_state - old_state, new_state


def test_isp_readings_above_and_below_the_count_and_an_undo_leave_home_assistants_statistics_true(broker, sub, server):
    b = broker()
    watch = sub(b)
    s = server(mqtt=b.settings(), data_cap_gb=1, interfaces=["dc-quiet0"], sources=[{"type": "local"}])  # no traffic
    config = json.loads(wait_for(lambda: watch.last(f"homeassistant/sensor/{NODE}/cycle_used/config"), 10,
                                 "the cycle sensor's discovery config"))
    assert config["state_class"] == "total" and config["last_reset_value_template"] == "{{ value_json.cycle_start_at }}"

    def published(value):
        return wait_for(lambda: (watch.state() or {}).get("cycle_used") == value, 15, f"cycle_used {value} published")
    first = wait_for(lambda: watch.state(), 10, "the first state")["cycle_used"]
    s.post("/api/usage/adjust", json={"used_gb": 0.8})  # the ISP's meter is ahead of datacap's count
    published(0.8)
    low = s.post("/api/usage/adjust", json={"used_gb": 0.3}).json()  # a later reading below it
    published(0.3)
    assert requests.delete(f"{s.url}/api/usage/adjust/{low['id']}", timeout=5).status_code == 200  # undone
    published(0.8)
    states = [json.loads(m[3]) for m in watch.messages if m[2] == f"{BASE}/state"]
    series = [(x["cycle_used"], x["cycle_start_at"]) for x in states]
    true = s.get("/api/usage").json()["cycle"]["used_bytes"] / GB
    total, state = ha_statistics(series, "total")
    print(f"published {[v for v, _ in series]}; Home Assistant: sum +{total:.3f} GB, state {state} GB; true {true} GB")
    assert state == true == 0.8 and abs(total - (true - first)) < 1e-9  # every correction followed, none kept
    assert len({x["cycle_start_at"] for x in states}) == 1  # last_reset moves only when a cycle begins
    assert ha_statistics(series, "total_increasing")[0] > total + 0.25  # what total_increasing did: 0.3 added for good
    today = [x["today"] for x in states]
    assert all(t <= c for t, c in zip(today, (x["cycle_used"] for x in states)))  # a day is never more than its cycle
