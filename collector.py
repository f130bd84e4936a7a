"""Count real interface traffic against the data cap.

    python collector.py [--config PATH] [--data-dir DIR] [--interval SECONDS]

Run by server.py at start-up, or by hand; the work is in datacap/usage/.
"""
import sys

from datacap import config as configmod
from datacap import process, store
from datacap.usage.collector import Collector
from datacap.usage.loop import run

LOCK_WAIT_S = 15.0  # a collector whose server was just killed exits within a few seconds: wait for it


def main(argv=None):
    p = process.base_parser("Count interface traffic against the data cap.")
    p.add_argument("--interval", type=float, help="seconds between samples (default update_interval_seconds)")
    args = p.parse_args(argv)
    process.setup_logging(args.log_level)
    cfg = process.load_config_or_exit(args.config, "collector")
    if args.interval is not None and not 0.1 <= args.interval <= 3600:
        p.error("--interval must be from 0.1 to 3600 seconds")
    data_dir = process.data_dir_from(args)
    lock = store.InstanceLock(data_dir, "collector")
    if not lock.acquire():
        print(f"collector: waiting for the collector {lock.holder_text()} to exit", file=sys.stderr)
    if not lock.is_held and not lock.acquire(wait_s=LOCK_WAIT_S):
        print(f"collector: another collector {lock.holder_text()} is already counting {data_dir}", file=sys.stderr)
        return configmod.EXIT_BUSY
    try:
        store.sweep_temp_files(data_dir)
        c = Collector(cfg, data_dir, store.runtime_dir(data_dir, create=True))
        run(c, args.interval, args.config, data_dir)
    finally:
        lock.release()
    return 0


if __name__ == "__main__":
    sys.exit(main())
