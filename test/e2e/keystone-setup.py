#!/usr/bin/python3
"""Projects, users, roles, services and endpoints of the all-in-one control plane (idempotent).

One Python start-up instead of a dozen `openstack` runs.  Admin credentials come
from the openrc environment (OS_*); every service user and the demo user get the
password in BERTH_AIO_PASSWORD.
"""
import os

from keystoneauth1 import session
from keystoneauth1.identity import v3
from keystoneclient.v3 import client

pw = os.environ["BERTH_AIO_PASSWORD"]
sess = session.Session(auth=v3.Password(
    auth_url=os.environ["OS_AUTH_URL"], username=os.environ["OS_USERNAME"],
    password=os.environ["OS_PASSWORD"], project_name=os.environ["OS_PROJECT_NAME"],
    user_domain_id="default", project_domain_id="default"))
ks = client.Client(session=sess)


def one(found):
    return found[0] if found else None


def project(name, description):
    return one(ks.projects.list(name=name, domain="default")) or \
        ks.projects.create(name, "default", description=description)


def user(name):
    u = one(ks.users.list(name=name, domain="default"))
    if u is None:
        return ks.users.create(name, domain="default", password=pw)
    ks.users.update(u, password=pw)
    return u


service_project = project("service", "Service project")
demo_project = project("demo", "demo project")
roles = {r: one(ks.roles.list(name=r)) or ks.roles.create(r)
         for r in ("admin", "member", "reader", "service")}
# nova, placement, glance: keystonemiddleware users; neutron: nova's [neutron] client user
for name in ("nova", "placement", "glance", "neutron"):
    u = user(name)
    for r in ("admin", "service"):
        ks.roles.grant(roles[r], user=u, project=service_project)
demo = user("demo")
for r in ("member", "reader"):
    ks.roles.grant(roles[r], user=demo, project=demo_project)

ENDPOINTS = [("nova", "compute", "http://127.0.0.1:8774/v2.1"),
             ("placement", "placement", "http://127.0.0.1:8778"),
             ("glance", "image", "http://127.0.0.1:9292"),
             ("neutron", "network", "http://127.0.0.1:9696")]
for name, service_type, url in ENDPOINTS:
    s = one(ks.services.list(type=service_type)) or ks.services.create(name, type=service_type)
    for iface in ("public", "internal", "admin"):
        eps = ks.endpoints.list(service=s, interface=iface)
        if not eps:
            ks.endpoints.create(s, url, interface=iface, region="RegionOne")
        elif eps[0].url != url:
            ks.endpoints.update(eps[0], url=url)
print("keystone: projects, users, roles and catalog in place")
