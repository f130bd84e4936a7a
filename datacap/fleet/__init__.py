"""Many sites, one view: this installation's site name, its Prometheus agent's config, the telemetry's cost."""
