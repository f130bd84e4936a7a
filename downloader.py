"""Burn data on purpose: stream from test URLs, measure speed, detect throttling.

    python downloader.py [--config PATH] [--data-dir DIR] [--url URL ...] [--streams N] [--limit-gb GB] [--line NAME]
    python downloader.py --probe [--max-bytes N]   (one short cap-sparing probe, kept in probes.json)

Run by server.py on Start, or by hand; the work is in datacap/measure/.
"""
import sys

from datacap import config as configmod
from datacap import process, store
from datacap.measure.probe import run as probe_run
from datacap.measure.session import Downloader, run
from datacap.usage import lines


def main(argv=None):
    p = process.base_parser("Stream from test URLs and watch for throttling.")
    p.add_argument("--url", action="append", help="test URL (repeatable); overrides test_urls")
    p.add_argument("--streams", type=int, help="parallel connections (1-64)")
    p.add_argument("--limit-gb", type=float, help="stop after this many GB (status finished)")
    p.add_argument("--line", help="the line (connection) to test over; default: the one carrying the default route")
    p.add_argument("--probe", action="store_true", help="one short speed probe instead of a test")
    p.add_argument("--max-bytes", type=int, help="with --probe: read at most this many bytes")
    args = p.parse_args(argv)
    process.setup_logging(args.log_level)
    cfg = process.load_config_or_exit(args.config, "downloader")
    for flag, value, rule in (("--streams", args.streams, "streams"), ("--limit-gb", args.limit_gb, "session_limit_gb"),
                              ("--url", args.url, "test_urls")):
        message = value is not None and configmod.CHECKS[rule](value)
        if message:
            p.error(f"{flag} {message}")
    if args.line is not None and lines.by_name(cfg, args.line) is None:
        p.error(f"--line: no line is called {args.line!r} ({', '.join(x.name for x in lines.of(cfg))})")
    data_dir = process.data_dir_from(args)
    if args.probe:
        return probe_run.run(cfg, data_dir, urls=args.url, max_bytes=args.max_bytes)
    lock = store.InstanceLock(data_dir, "downloader")
    if not lock.acquire():
        print(f"downloader: another downloader {lock.holder_text()} is already testing with {data_dir}", file=sys.stderr)
        return configmod.EXIT_BUSY
    try:
        d = Downloader(cfg, data_dir, urls=args.url, streams=args.streams, limit_gb=args.limit_gb,
                       config_path=args.config, line=args.line)
        return run(d, data_dir)
    finally:
        lock.release()


if __name__ == "__main__":
    sys.exit(main())
