#!/usr/bin/python3
"""smoke-check.py [SECONDS] - is the all-in-one control plane usable?

Checks, through the APIs with the openrc credentials (OS_* environment): a
token, the catalog has identity/compute/image/placement/network, Glance and
Placement answer, and nova-conductor and nova-scheduler are 'up' in
GET /os-services.  Waits up to SECONDS (default 0: one look) for the services.
Prints the compute services; exits 1 naming what is missing.
"""
import os
import sys
import time

from keystoneauth1 import session
from keystoneauth1.identity import v3

deadline = time.monotonic() + (float(sys.argv[1]) if len(sys.argv) > 1 else 0)
sess = session.Session(auth=v3.Password(
    auth_url=os.environ["OS_AUTH_URL"], username=os.environ["OS_USERNAME"],
    password=os.environ["OS_PASSWORD"], project_name=os.environ["OS_PROJECT_NAME"],
    user_domain_name="Default", project_domain_name="Default"))


def fail(why):
    print("smoke check FAILED: %s" % why)
    sys.exit(1)


try:
    catalog = sess.auth.get_access(sess).service_catalog.catalog
except Exception as e:  # keystone down or bad credentials
    fail("no token from %s: %s" % (os.environ["OS_AUTH_URL"], e))
missing = {"identity", "compute", "image", "placement", "network"} - {s["type"] for s in catalog}
if missing:
    fail("catalog lacks %s" % ", ".join(sorted(missing)))


def get(service_type, path):
    return sess.get(path, endpoint_filter={"service_type": service_type, "interface": "public"},
                    raise_exc=False)


for service_type, path in (("image", "/v2/images?limit=1"), ("placement", "/resource_providers")):
    r = get(service_type, path)
    if r.status_code != 200:
        fail("%s %s answered %d" % (service_type, path, r.status_code))

while True:
    r = get("compute", "/os-services")
    services = r.json().get("services", []) if r.status_code == 200 else []
    up = {s["binary"] for s in services if s["state"] == "up"}
    if {"nova-conductor", "nova-scheduler"} <= up or time.monotonic() >= deadline:
        break
    time.sleep(1)
for s in services:
    print("  %-16s %-20s %-8s %s" % (s["binary"], s["host"], s["status"], s["state"]))
if not {"nova-conductor", "nova-scheduler"} <= up:
    fail("nova-conductor and nova-scheduler are not both up (GET /os-services: %d)" % r.status_code)
print("smoke check ok: catalog, glance, placement, conductor and scheduler up")
