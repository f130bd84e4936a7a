"""datacap web server: the dashboard, the JSON API, and the supervisor of both children.

    python server.py [--config PATH] [--data-dir DIR] [--host HOST] [--port PORT] [--no-browser] [--new-token]

The app is datacap/web/, the supervisor datacap/supervise/, the serve loop datacap/serve.py.
"""
import os
import secrets
import sys
from pathlib import Path

from datacap import VERSION, process, serve, store
from datacap import config as configmod
from datacap.supervise.supervisor import Supervisor
from datacap.web import create_app

__all__ = ["create_app", "main"]


def main(argv=None):
    p = process.base_parser("datacap: ISP data-cap tester and usage monitor.")
    p.add_argument("--host", default=os.environ.get("DATACAP_HOST"))
    p.add_argument("--port", type=int, default=os.environ.get("DATACAP_PORT"))
    p.add_argument("--no-browser", action="store_true", help="do not open the dashboard in a browser")
    p.add_argument("--version", action="version", version=f"datacap {VERSION}")
    p.add_argument("--print-systemd-unit", action="store_true",
                   help="print a systemd unit for this checkout (see deploy/datacap.service) and exit")
    p.add_argument("--new-token", action="store_true", help="print a strong auth_token for config.json and exit")
    args = p.parse_args(argv)
    if args.new_token:
        print(secrets.token_urlsafe(24))  # 32 characters, 192 random bits
        return 0
    if args.print_systemd_unit:
        print(serve.systemd_unit(), end="")
        return 0
    process.setup_logging(args.log_level)
    config_path = Path(args.config or os.environ.get("DATACAP_CONFIG") or configmod.DEFAULT_CONFIG_PATH)
    cfg = process.load_config_or_exit(config_path, "server")
    host, port = args.host or cfg["host"], int(args.port or cfg["port"])
    if host not in configmod.LOOPBACK_HOSTS and not cfg["auth_token"]:  # --host / DATACAP_HOST
        print(f"server: refusing to listen on {host} without auth_token in config.json: anyone on the "
              "network could burn your data cap", file=sys.stderr)
        return configmod.EXIT_BAD_CONFIG
    data_dir = process.data_dir_from(args)
    lock = store.InstanceLock(data_dir, "server")
    if not lock.acquire():
        print(f"server: another datacap server {lock.holder_text()} is already using {data_dir}", file=sys.stderr)
        return configmod.EXIT_BAD_CONFIG
    try:
        store.sweep_temp_files(data_dir)
        supervisor = Supervisor(config_path, data_dir)
        app = create_app(cfg, data_dir, config_path, supervisor)
        server = serve.listen(app, host, port)
        return 1 if server is None else serve.run(app, server, supervisor, config_path, not args.no_browser)
    finally:
        store.remove_runtime_dir(data_dir)  # its live files end with their writers
        lock.release()


if __name__ == "__main__":
    sys.exit(main())
