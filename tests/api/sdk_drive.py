#!/usr/bin/env python3
"""Drives ipsec-server's control API with the official Alibaba Cloud SDKs, unchanged:
alibabacloud-vpc20160428 (V3, ACS3-HMAC-SHA256) and aliyun-python-sdk-vpc + -core (RPC v1,
HMAC-SHA1). Called by tests/api_sdk.rs inside the gateway's network namespace.

Usage: sdk_drive.py PHASE   (env: API_ENDPOINT, API_AK, API_SECRET, API_GW, API_REGION,
API_PSK, API_LOCAL_ID, API_SERVER_ID for phases after `create`)
Prints `RESULT key=value` lines; any failed expectation exits non-zero with a message.
"""
import json
import os
import sys
import time
import uuid

from alibabacloud_tea_openapi import models as open_api_models
from alibabacloud_vpc20160428 import models as vpc
from alibabacloud_vpc20160428.client import Client

from aliyunsdkcore.acs_exception.exceptions import ServerException
from aliyunsdkcore.client import AcsClient
from aliyunsdkvpc.request.v20160428.DescribeVpnGatewayRequest import DescribeVpnGatewayRequest
from aliyunsdkvpc.request.v20160428.ListIpsecServersRequest import ListIpsecServersRequest
from aliyunsdkvpc.request.v20160428.CreateIpsecServerRequest import CreateIpsecServerRequest

ENDPOINT = os.environ["API_ENDPOINT"]
AK = os.environ["API_AK"]
SECRET = os.environ["API_SECRET"]
GW = os.environ["API_GW"]
REGION = os.environ["API_REGION"]
PSK = os.environ.get("API_PSK", "")
LOCAL_ID = os.environ.get("API_LOCAL_ID", "")
POOL = "10.0.0.0/24"
SUBNET = "192.168.0.0/24"
IKE = {"IkeVersion": "ikev2", "IkeMode": "main", "IkeEncAlg": "aes", "IkeAuthAlg": "sha1",
       "IkePfs": "group2", "IkeLifetime": 86400, "LocalId": LOCAL_ID, "RemoteId": ""}
IPSEC = {"IpsecEncAlg": "aes", "IpsecAuthAlg": "sha1", "IpsecPfs": "group2", "IpsecLifetime": 86400}


def v3(secret=SECRET):
    return Client(open_api_models.Config(access_key_id=AK, access_key_secret=secret,
                                         endpoint=ENDPOINT, protocol="http", region_id=REGION))


def v1(secret=SECRET):
    return AcsClient(AK, secret, REGION, auto_retry=False)


def v1_call(req, secret=SECRET):
    req.set_endpoint(ENDPOINT)
    req.set_protocol_type("http")
    return v1(secret).do_action_with_exception(req)


def fail(msg):
    print(f"FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


def expect_error(what, fn, code, status):
    try:
        r = fn()
    except ServerException as e:  # aliyun-python-sdk-core
        got = (e.get_error_code(), e.get_http_status())
    except Exception as e:  # alibabacloud tea-openapi ClientException / ServerException
        got = (getattr(e, "code", None), getattr(e, "status_code", None))
        if got[0] is None:
            fail(f"{what}: unexpected exception {type(e).__name__}: {e}")
    else:
        fail(f"{what}: expected {code} ({status}), got success {r}")
    check(got == (code, status), f"{what}: expected {code} ({status}), got {got}")
    print(f"RESULT error {what}={code}")


def describe_status(client=None):
    r = (client or v3()).describe_vpn_gateway(
        vpc.DescribeVpnGatewayRequest(region_id=REGION, vpn_gateway_id=GW))
    return r.body.status


def wait_active(limit=30.0):
    deadline = time.time() + limit
    seen = []
    while time.time() < deadline:
        s = describe_status()
        seen.append(s)
        if s == "active":
            return seen
        time.sleep(0.2)
    fail(f"gateway not active after {limit}s; statuses {seen[-5:]}")


def list_servers(**kw):
    return v3().list_ipsec_servers(vpc.ListIpsecServersRequest(region_id=REGION, **kw)).body


def create_request(**over):
    args = dict(region_id=REGION, vpn_gateway_id=GW, local_subnet=SUBNET, client_ip_pool=POOL,
                ip_sec_server_name="sdk-made", effect_immediately=False,
                ike_config=json.dumps(IKE), ipsec_config=json.dumps(IPSEC),
                psk_enabled=True, psk=PSK)
    args.update(over)
    return vpc.CreateIpsecServerRequest(**args)


def phase_create():
    check(describe_status() == "active", "a bare gateway is active")
    check(list_servers().total_count == 0, "no server before create")
    token = str(uuid.uuid4())
    r = v3().create_ipsec_server(create_request(client_token=token)).body
    check(r.ipsec_server_id.startswith("iss-"), f"id {r.ipsec_server_id}")
    check(r.vpn_gateway_id == GW and r.region_id == REGION, "gateway/region echoed")
    check(r.ipsec_server_name == "sdk-made", "name echoed")
    # Same ClientToken: same answer, no second server (also while still updating).
    again = v3().create_ipsec_server(create_request(client_token=token)).body
    check(again.ipsec_server_id == r.ipsec_server_id, "idempotent create returns the same id")
    statuses = wait_active()
    print(f"RESULT statuses={','.join(statuses)}")
    body = list_servers(vpn_gateway_id=GW)
    check(body.total_count == 1 and len(body.ipsec_servers) == 1, "exactly one server listed")
    s = body.ipsec_servers[0]
    check(s.ipsec_server_id == r.ipsec_server_id, "listed id")
    check(s.local_subnet == SUBNET and s.client_ip_pool == POOL, "listed subnets")
    check(s.psk == PSK and s.psk_enabled is True, "listed PSK")
    check(s.ipsec_server_name == "sdk-made", "listed name")
    check(s.creation_time == r.creation_time, "listed creation time")
    check(s.ike_config.ike_enc_alg == "aes" and s.ike_config.ike_pfs == "group2"
          and s.ike_config.local_id == LOCAL_ID, "listed IkeConfig")
    check(s.ipsec_config.ipsec_auth_alg == "sha1" and s.ipsec_config.ipsec_lifetime == 86400,
          "listed IpsecConfig")
    check(s.online_client_count == 0, "no client yet")
    # The old SDK (signature v1) sees the same.
    old = json.loads(v1_call(ListIpsecServersRequest()))
    check(old["IpsecServers"][0]["IpsecServerId"] == r.ipsec_server_id, "v1 list")
    print(f"RESULT server_id={r.ipsec_server_id}")


def phase_online():
    want = int(sys.argv[2])
    s = list_servers().ipsec_servers[0]
    check(s.online_client_count == want, f"OnlineClientCount {s.online_client_count} != {want}")
    print(f"RESULT online={want}")


def phase_listed():
    body = list_servers()
    check(body.total_count == 1, "server kept across restart")
    s = body.ipsec_servers[0]
    check(s.ipsec_server_id == os.environ["API_SERVER_ID"], "same id after restart")
    check(s.psk == PSK, "same PSK after restart")
    wait_active()
    # Filters and paging.
    sid = os.environ["API_SERVER_ID"]
    check(list_servers(ipsec_server_id=[sid]).total_count == 1, "filter by id")
    check(list_servers(ipsec_server_id=["iss-other"]).total_count == 0, "filter by other id")
    check(list_servers(ipsec_server_name="sdk-made").total_count == 1, "filter by name")
    check(list_servers(ipsec_server_name="nope").total_count == 0, "filter by other name")
    page = list_servers(max_results=1)
    check(len(page.ipsec_servers) == 1 and page.max_results == 1 and not page.next_token,
          "one page of one")
    expect_error("max-results", lambda: list_servers(max_results=21), "IllegalParam.MaxResults",
                 400)
    print("RESULT listed=ok")


def phase_errors():
    sid = os.environ["API_SERVER_ID"]
    expect_error("exists", lambda: v3().create_ipsec_server(create_request()),
                 "OperationFailed.IPsecServerExist", 400)
    expect_error("wrong-gateway",
                 lambda: v3().create_ipsec_server(create_request(vpn_gateway_id="vpn-nope")),
                 "InvalidVpnGatewayInstanceId.NotFound", 404)
    expect_error("describe-wrong-gateway", lambda: v3().describe_vpn_gateway(
        vpc.DescribeVpnGatewayRequest(region_id=REGION, vpn_gateway_id="vpn-nope")),
        "InvalidVpnGatewayInstanceId.NotFound", 404)
    cases = [
        ("local-subnet", dict(local_subnet="192.168.0.1/24"), "IllegalParam.LocalSubnet"),
        ("netmask", dict(client_ip_pool="10.9.0.0/30"), "ClientIpPool.NetmaskInvalid"),
        ("pool-conflict", dict(client_ip_pool="192.168.0.0/24"), "InvalidClientIpPool.Conflict"),
        ("auth-method", dict(psk_enabled=False), "IllegalParam.AuthMethod"),
        ("ipsec-pfs", dict(ipsec_config=json.dumps({"IpsecPfs": "group99"})),
         "OperationUnsupported.IpsecPfs"),
        ("name", dict(ip_sec_server_name="http://x"), "IllegalParam.IpSecServerName"),
        ("psk", dict(psk="x" * 101), "IllegalParam.Psk"),
        ("ike-version", dict(ike_config=json.dumps({"IkeVersion": "ikev1"})),
         "OperationUnsupported.IkeVersion"),
        ("ike-enc", dict(ike_config=json.dumps({"IkeEncAlg": "rot13"})), "IllegalParam.IkeEncAlg"),
        ("ike-lifetime", dict(ike_config=json.dumps({"IkeLifetime": 86401})),
         "IllegalParam.IkeLifetime"),
        ("ipsec-json", dict(ipsec_config="{not json"), "IllegalParam.IpsecConfig"),
    ]
    for what, over, code in cases:
        expect_error(what, lambda: v3().create_ipsec_server(create_request(**over)), code, 400)
    # DryRun: a valid update is only checked.
    psk_before = list_servers().ipsec_servers[0].psk
    expect_error("dry-run", lambda: v3().update_ipsec_server(vpc.UpdateIpsecServerRequest(
        region_id=REGION, ipsec_server_id=sid, psk="dry-run-psk", dry_run=True)),
        "DryRunOperation", 400)
    check(list_servers().ipsec_servers[0].psk == psk_before, "DryRun changed nothing")
    expect_error("unknown-server", lambda: v3().delete_ipsec_server(vpc.DeleteIpsecServerRequest(
        region_id=REGION, ipsec_server_id="iss-doesnotexist")), "InvalidIpsecServerId.NotFound",
        404)
    # Authentication: wrong secret (both schemes), unknown key.
    expect_error("bad-signature-v3", lambda: describe_status(v3("wrong-secret")),
                 "SignatureDoesNotMatch", 400)
    r = DescribeVpnGatewayRequest()
    r.set_VpnGatewayId(GW)
    # aliyun-python-sdk-core turns SignatureDoesNotMatch into InvalidAccessKeySecret when the
    # server's string to sign (in the message, as the cloud returns it) equals its own.
    expect_error("bad-signature-v1", lambda: v1_call(r, "wrong-secret"), "InvalidAccessKeySecret",
                 400)
    # Unsigned (plain HTTP, no SDK): Forbidden, in Alibaba's error body, JSON and XML.
    import urllib.error
    import urllib.request
    for fmt, probe in (("JSON", '"Code":"Forbidden"'), ("XML", "<Code>Forbidden</Code>")):
        url = f"http://{ENDPOINT}/?Action=DescribeVpnGateway&VpnGatewayId={GW}&Format={fmt}"
        try:
            urllib.request.urlopen(url, timeout=10)
            fail("an unsigned request succeeded")
        except urllib.error.HTTPError as e:
            body = e.read().decode()
            check(e.code == 403 and probe in body, f"unsigned: {e.code} {body}")
            for field in ("RequestId", "HostId", "Message", "Recommend"):
                check(field in body, f"error body lacks {field}: {body}")
    print("RESULT error unsigned=Forbidden")
    # The v1 SDK: describe in JSON and in XML (Format=XML).
    r = DescribeVpnGatewayRequest()
    r.set_VpnGatewayId(GW)
    check(json.loads(v1_call(r))["Status"] == "active", "v1 describe")
    r = DescribeVpnGatewayRequest()
    r.set_VpnGatewayId(GW)
    r.set_accept_format("XML")
    r.set_endpoint(ENDPOINT)
    r.set_protocol_type("http")
    # do_action_with_exception forces JSON; do_action keeps the requested format.
    xml = v1().do_action(r).decode()
    check("<DescribeVpnGatewayResponse>" in xml and "<Status>active</Status>" in xml, xml)
    c = CreateIpsecServerRequest()
    c.set_VpnGatewayId(GW)
    c.set_LocalSubnet(SUBNET)
    c.set_ClientIpPool("10.1.0.0/24")
    c.set_DryRun("true")
    expect_error("v1-dry-run-exists", lambda: v1_call(c), "OperationFailed.IPsecServerExist", 400)
    print("RESULT errors=ok")


PSK2 = "second-psk-0123"


def phase_update_keep():
    """EffectImmediately=false: a new PSK for new IKE SAs; existing ones are kept."""
    sid = os.environ["API_SERVER_ID"]
    v3().update_ipsec_server(vpc.UpdateIpsecServerRequest(
        region_id=REGION, ipsec_server_id=sid, psk=PSK2, effect_immediately=False))
    wait_active()
    s = list_servers().ipsec_servers[0]
    check(s.psk == PSK2 and s.effect_immediately is False, "PSK updated, EffectImmediately false")
    print("RESULT update_keep=ok")


def phase_update_now():
    """EffectImmediately=true: existing IKE SAs are deleted."""
    sid = os.environ["API_SERVER_ID"]
    time.sleep(3.2)  # past the OperationConflict window of the previous change
    v3().update_ipsec_server(vpc.UpdateIpsecServerRequest(
        region_id=REGION, ipsec_server_id=sid, ipsec_server_name="sdk-now",
        effect_immediately=True))
    wait_active()
    check(list_servers().ipsec_servers[0].effect_immediately is True, "EffectImmediately true")
    print("RESULT update_now=ok")


def phase_update_delete():
    sid = os.environ["API_SERVER_ID"]
    time.sleep(3.2)  # past the OperationConflict window of the previous change
    new_ike = dict(IKE, IkeEncAlg="aes256", IkeAuthAlg="sha256", IkePfs="group14")
    token = str(uuid.uuid4())
    req = vpc.UpdateIpsecServerRequest(region_id=REGION, ipsec_server_id=sid,
                                       ipsec_server_name="sdk-updated", psk="updated-psk-1",
                                       ike_config=json.dumps(new_ike), effect_immediately=True,
                                       client_token=token)
    v3().update_ipsec_server(req)
    expect_error("configuring", lambda: v3().update_ipsec_server(vpc.UpdateIpsecServerRequest(
        region_id=REGION, ipsec_server_id=sid, psk="other-psk")), "VpnGateway.Configuring", 400)
    v3().update_ipsec_server(req)  # same token: same answer, not Configuring
    wait_active()
    expect_error("too-frequent", lambda: v3().update_ipsec_server(vpc.UpdateIpsecServerRequest(
        region_id=REGION, ipsec_server_id=sid, psk="other-psk")), "OperationConflict", 409)
    s = list_servers().ipsec_servers[0]
    check(s.ipsec_server_name == "sdk-updated" and s.psk == "updated-psk-1", "updated fields")
    check(s.ike_config.ike_enc_alg == "aes256" and s.ike_config.ike_pfs == "group14",
          "updated IkeConfig")
    check(s.local_subnet == SUBNET, "unchanged fields kept")
    time.sleep(3.2)
    token = str(uuid.uuid4())
    d = vpc.DeleteIpsecServerRequest(region_id=REGION, ipsec_server_id=sid, client_token=token)
    v3().delete_ipsec_server(d)
    v3().delete_ipsec_server(d)  # idempotent
    wait_active()
    check(list_servers().total_count == 0, "deleted")
    print("RESULT deleted=ok")


def phase_generated_psk():
    time.sleep(3.2)  # past the OperationConflict window of the delete in update-delete
    r = v3().create_ipsec_server(create_request(psk=None, client_ip_pool="10.2.0.0/24")).body
    wait_active()
    s = list_servers().ipsec_servers[0]
    check(len(s.psk) == 16 and s.psk.isalnum(), "generated 16-character PSK")
    time.sleep(3.2)
    v3().delete_ipsec_server(vpc.DeleteIpsecServerRequest(region_id=REGION,
                                                          ipsec_server_id=r.ipsec_server_id))
    wait_active()
    print("RESULT generated_psk=ok")


PHASES = {"create": phase_create, "online": phase_online, "listed": phase_listed,
          "errors": phase_errors, "update-keep": phase_update_keep,
          "update-now": phase_update_now, "update-delete": phase_update_delete,
          "generated-psk": phase_generated_psk}

if __name__ == "__main__":
    PHASES[sys.argv[1]]()
