#!/usr/bin/python3
"""Stand-in for the Neutron API ('network' service) of the all-in-one control plane.

Why it exists: nova calls Neutron even for servers booted with `--nic none`
(microversion >= 2.37): nova-api's server list/show (security groups),
start/reboot/resume (GET /v2.0/ports?device_id=... to refresh the network info
cache), delete (deallocate_for_instance) and the _heal_instance_info_cache
periodic task of a Python nova-compute.  Without a 'network' endpoint in the
Keystone catalog these raise EndpointNotFound and a delete puts the instance
in ERROR.  Boots without `networks` (microversion < 2.37) also make nova-api
call GET /v2.0/networks and GET /v2.0/quotas/{project}.

Berth itself never needs this: it is here for nova-api and for the Python
nova-compute peer.

Answers: every GET of a collection -> empty list (key = last path segment,
'-' -> '_'); GET of a single resource (uuid) -> 404; quotas -> unlimited;
POST/PUT -> 400; DELETE -> 204.  Every request is logged to stderr.
It does NOT check tokens.  Binds 127.0.0.1 only; port = argv[1] (default 9696).
"""
import json
import re
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOST, PORT = "127.0.0.1", int(sys.argv[1]) if len(sys.argv) > 1 else 9696

VERSIONS = {"versions": [{"id": "v2.0", "status": "CURRENT", "links": [
    {"rel": "self", "href": "http://%s:%d/v2.0/" % (HOST, PORT)}]}]}

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")

QUOTA_KEYS = ("network", "subnet", "port", "router", "floatingip",
              "security_group", "security_group_rule", "rbac_policy")


class FakeNeutron(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _send(self, code, obj=None):
        body = b"" if obj is None else json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    def _drain(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def do_GET(self):
        path = self.path.split("?", 1)[0].rstrip("/")
        if path in ("", "/"):
            return self._send(200, VERSIONS)
        if path == "/v2.0":
            return self._send(200, {"resources": []})
        if path.startswith("/v2.0/quotas/"):
            if path.endswith("/details.json") or path.endswith("/details"):
                return self._send(200, {"quota": {
                    k: {"limit": -1, "used": 0, "reserved": 0} for k in QUOTA_KEYS}})
            return self._send(200, {"quota": {k: -1 for k in QUOTA_KEYS}})
        last = path.split("/")[-1]
        if last.endswith(".json"):
            last = last[:-5]
        if UUID_RE.match(last):
            return self._send(404, {"NeutronError": {
                "type": "NotFound", "message": "not found (fake-neutron)",
                "detail": ""}})
        return self._send(200, {last.replace("-", "_"): []})

    def do_POST(self):
        self._drain()
        self._send(400, {"NeutronError": {
            "type": "BadRequest",
            "message": "fake-neutron: create/update not supported",
            "detail": ""}})

    do_PUT = do_POST

    def do_DELETE(self):
        self._send(204)

    def log_message(self, fmt, *args):
        sys.stderr.write("%s %s\n" % (self.log_date_time_string(), fmt % args))
        sys.stderr.flush()


if __name__ == "__main__":
    ThreadingHTTPServer((HOST, PORT), FakeNeutron).serve_forever()
