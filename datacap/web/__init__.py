"""The Flask app: the dashboard, the JSON API and /metrics, as blueprints over one Views."""
from pathlib import Path

from flask import Flask

from datacap import config as configmod
from datacap.config import ROOT
from datacap.web import api_config, api_session, api_system, api_usage, errors, export, metrics, pages, security
from datacap.web import api_probes
from datacap.web import api_devices, api_history, report
from datacap.web.shared_polls import SharedPolls
from datacap.web.views import Views

MAX_BODY = 64 * 1024


def create_app(test_config=None, data_dir=None, config_path=None, supervisor=None):
    """Build the Flask app. No threads, no children, no signal handlers: serve.run() does that."""
    cfg = configmod.validate(test_config or {}) if test_config is not None else configmod.load(config_path)
    data_dir = Path(data_dir or configmod.DEFAULT_DATA_DIR)
    config_path = Path(config_path or configmod.DEFAULT_CONFIG_PATH)
    app = Flask(__name__, static_folder=str(ROOT / "static"), static_url_path="/static")
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY
    views = Views(cfg, data_dir, config_path, supervisor)
    app.extensions["datacap"] = views
    security.install(app, lambda: views.cfg)
    errors.register(app)
    for module in (pages, api_session, api_usage, api_config, api_system, export, metrics, api_probes,
                   api_history, report, api_devices):
        app.register_blueprint(module.bp)
    app.wsgi_app = SharedPolls(app.wsgi_app, lambda: views.cfg)
    return app
