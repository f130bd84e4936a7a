"""datacap: ISP data-cap tester and network-usage monitor."""
VERSION = "0.2.0"
