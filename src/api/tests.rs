//! The API service driven in memory: a fake backend, requests signed with RPC signature v1
//! as `aliyun-python-sdk-core` signs them. The SDKs themselves drive a real daemon in
//! `tests/api_sdk.rs`.

use std::sync::atomic::{AtomicUsize, Ordering};

use super::ids::request_id;
use super::*;
use crate::config::codes;
use serde_json::json;

struct Fake {
    applied: AtomicUsize,
}

impl Backend for Fake {
    fn apply(&self, _: Option<&IpsecServerConfig>, _: bool) -> Result<(), String> {
        self.applied.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
    fn online_clients(&self) -> usize {
        0
    }
}

const SECRET: &str = "test-secret-0123456789";

fn api(dir: &std::path::Path) -> Arc<Api> {
    api_with(dir, "")
}

fn api_with(dir: &std::path::Path, extra: &str) -> Arc<Api> {
    let toml = format!(
        r#"[gateway]
vpn_gateway_id = "vpn-test0001"
region_id = "local"
state_dir = "{}"
[api]
listen = "127.0.0.1:18080"
[[api.access_keys]]
access_key_id = "ak-test"
access_key_secret = "{SECRET}"
{extra}
"#,
        dir.display()
    );
    let cfg = Config::from_toml_str(&toml, &[], &mut rand::thread_rng()).unwrap();
    Api::open(
        &cfg,
        Arc::new(Fake {
            applied: AtomicUsize::new(0),
        }),
    )
    .unwrap()
}

/// A v1-signed GET with `params`.
fn v1(params: &[(&str, &str)], secret: &str) -> Request {
    v1_at(params, secret, now_unix())
}

/// As [`v1`], with `Timestamp` = `unix`.
fn v1_at(params: &[(&str, &str)], secret: &str, unix: i64) -> Request {
    let nonce = request_id();
    let ts = sign::format_utc(unix);
    let mut all: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    for (k, v) in [
        ("AccessKeyId", "ak-test"),
        ("SignatureMethod", "HMAC-SHA1"),
        ("SignatureVersion", "1.0"),
        ("SignatureNonce", nonce.as_str()),
        ("Timestamp", ts.as_str()),
        ("Version", VERSION),
        ("Format", "JSON"),
    ] {
        if !all.iter().any(|(have, _)| have == k) {
            all.push((k.into(), v.into()));
        }
    }
    let mut enc: Vec<(String, String)> = all
        .iter()
        .map(|(k, v)| (sign::percent_encode(k), sign::percent_encode(v)))
        .collect();
    enc.sort();
    let canon = enc
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let to_sign = format!("GET&%2F&{}", sign::percent_encode(&canon));
    let mut mac =
        <hmac::Hmac<sha1::Sha1> as hmac::Mac>::new_from_slice(format!("{secret}&").as_bytes())
            .unwrap();
    hmac::Mac::update(&mut mac, to_sign.as_bytes());
    let sig = sign::base64(&hmac::Mac::finalize(mac).into_bytes());
    let query = format!("{canon}&Signature={}", sign::percent_encode(&sig));
    Request {
        method: "GET".into(),
        path: "/".into(),
        query,
        headers: vec![("host".into(), "127.0.0.1".into())],
        body: Vec::new(),
    }
}

fn call(api: &Arc<Api>, req: &Request) -> (u16, Value) {
    let r = api.handle(req, "127.0.0.1:1".parse().unwrap());
    (
        r.status,
        serde_json::from_slice(&r.body).unwrap_or(Value::Null),
    )
}

fn wait_active(api: &Arc<Api>) {
    for _ in 0..100 {
        let (_, v) = call(
            api,
            &v1(
                &[
                    ("Action", "DescribeVpnGateway"),
                    ("VpnGatewayId", "vpn-test0001"),
                ],
                SECRET,
            ),
        );
        if v["Status"] == "active" {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("never active");
}

fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("api-unit-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

#[test]
fn lifecycle_and_errors() {
    let dir = tmpdir("life");
    let a = api(&dir);
    let create = [
        ("Action", "CreateIpsecServer"),
        ("RegionId", "local"),
        ("VpnGatewayId", "vpn-test0001"),
        ("LocalSubnet", "192.168.0.0/24"),
        ("ClientIpPool", "10.0.0.0/24"),
        ("ClientToken", "tok-1"),
    ];
    // Bad signature and unsigned requests.
    assert_eq!(
        call(&a, &v1(&create, "wrong")).1["Code"],
        "SignatureDoesNotMatch"
    );
    let mut unsigned = v1(&create, SECRET);
    unsigned.query = "Action=CreateIpsecServer".into();
    assert_eq!(call(&a, &unsigned).0, 403);
    // Clock skew beyond 15 minutes, either way.
    let describe = [
        ("Action", "DescribeVpnGateway"),
        ("VpnGatewayId", "vpn-test0001"),
    ];
    for off in [-16 * 60, 16 * 60] {
        let r = v1_at(&describe, SECRET, now_unix() + off);
        assert_eq!(call(&a, &r).1["Code"], "InvalidTimeStamp.Expired");
    }
    // Unknown AccessKeyId.
    let mut r = v1(&describe, SECRET);
    r.query = r
        .query
        .replace("AccessKeyId=ak-test", "AccessKeyId=ak-nope");
    assert_eq!(call(&a, &r).1["Code"], "InvalidAccessKeyId.NotFound");
    // Replay of the very same signed request.
    let req = v1(
        &[
            ("Action", "DescribeVpnGateway"),
            ("VpnGatewayId", "vpn-test0001"),
        ],
        SECRET,
    );
    assert_eq!(call(&a, &req).0, 200);
    assert_eq!(call(&a, &req).1["Code"], "SignatureNonceUsed");

    let (st, v) = call(&a, &v1(&create, SECRET));
    assert_eq!(st, 200, "{v}");
    let id = v["IpsecServerId"].as_str().unwrap().to_owned();
    assert!(id.starts_with("iss-"));
    // Same token: same answer while configuring, and no second server.
    let (st, again) = call(&a, &v1(&create, SECRET));
    assert_eq!((st, &again["IpsecServerId"]), (200, &v["IpsecServerId"]));
    let mut other = create.to_vec();
    other[5] = ("ClientToken", "tok-2");
    assert_eq!(
        call(&a, &v1(&other, SECRET)).1["Code"],
        "VpnGateway.Configuring"
    );
    wait_active(&a);
    assert_eq!(
        call(&a, &v1(&other, SECRET)).1["Code"],
        "OperationFailed.IPsecServerExist"
    );
    let (_, l) = call(
        &a,
        &v1(
            &[("Action", "ListIpsecServers"), ("RegionId", "local")],
            SECRET,
        ),
    );
    let s = &l["IpsecServers"][0];
    assert_eq!(s["IpsecServerId"], id.as_str());
    assert_eq!(s["Psk"].as_str().unwrap().len(), 16, "generated PSK");
    let upd = [
        ("Action", "UpdateIpsecServer"),
        ("IpsecServerId", id.as_str()),
        ("Psk", "new-psk"),
    ];
    assert_eq!(call(&a, &v1(&upd, SECRET)).1["Code"], "OperationConflict");

    // Restart: a new service over the same state dir sees the server.
    drop(a);
    let b = api(&dir);
    let (_, l) = call(&b, &v1(&[("Action", "ListIpsecServers")], SECRET));
    assert_eq!(l["TotalCount"], 1);
    assert_eq!(l["IpsecServers"][0]["IpsecServerId"], id.as_str());
    let del = [
        ("Action", "DeleteIpsecServer"),
        ("IpsecServerId", id.as_str()),
        ("DryRun", "true"),
    ];
    assert_eq!(call(&b, &v1(&del, SECRET)).1["Code"], "DryRunOperation");
    let del = [
        ("Action", "DeleteIpsecServer"),
        ("IpsecServerId", id.as_str()),
    ];
    assert_eq!(call(&b, &v1(&del, SECRET)).0, 200);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn validation_codes_and_xml() {
    let dir = tmpdir("codes");
    let a = api(&dir);
    let base = |pool: &'static str, extra: Option<(&'static str, &'static str)>| {
        let mut p = vec![
            ("Action", "CreateIpsecServer"),
            ("VpnGatewayId", "vpn-test0001"),
            ("LocalSubnet", "192.168.0.0/24"),
            ("ClientIpPool", pool),
        ];
        p.extend(extra);
        p
    };
    let code = |p: Vec<(&str, &str)>| call(&a, &v1(&p, SECRET)).1["Code"].clone();
    assert_eq!(
        code(base("10.0.0.0/30", None)),
        codes::CLIENT_IP_POOL_NETMASK_INVALID
    );
    assert_eq!(
        code(base("192.168.0.0/24", None)),
        codes::CLIENT_IP_POOL_CONFLICT
    );
    assert_eq!(
        code(base("10.0.0.0/24", Some(("PskEnabled", "false")))),
        codes::ILLEGAL_AUTH_METHOD
    );
    assert_eq!(
        code(base(
            "10.0.0.0/24",
            Some(("IpsecConfig", r#"{"IpsecPfs":"group99"}"#))
        )),
        codes::UNSUPPORTED_IPSEC_PFS
    );
    let mut wrong_gw = base("10.0.0.0/24", None);
    wrong_gw[1] = ("VpnGatewayId", "vpn-other");
    assert_eq!(call(&a, &v1(&wrong_gw, SECRET)).0, 404);
    let mut p = base("10.0.0.0/30", None);
    p.push(("Format", "XML"));
    let req = v1(&p, SECRET);
    let r = a.handle(&req, "127.0.0.1:1".parse().unwrap());
    let body = String::from_utf8(r.body).unwrap();
    assert_eq!(r.status, 400, "{body}");
    assert!(
        body.contains("<Error>") && body.contains("<Code>ClientIpPool.NetmaskInvalid</Code>"),
        "{body}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn file_server_is_adopted_until_the_api_changes_it() {
    let dir = tmpdir("file");
    let file = r#"[ipsec_server]
ipsec_server_name = "from-file"
local_subnet = ["192.168.0.0/24"]
client_ip_pool = "10.0.0.0/24"
psk = "file-psk-0123"
"#;
    let a = api_with(&dir, file);
    let (_, l) = call(&a, &v1(&[("Action", "ListIpsecServers")], SECRET));
    let s = &l["IpsecServers"][0];
    assert_eq!(s["IpsecServerName"], "from-file");
    assert_eq!(s["Psk"], "file-psk-0123");
    assert!(
        !dir.join(state::FILE_NAME).exists(),
        "nothing written before a change"
    );
    let id = s["IpsecServerId"].as_str().unwrap().to_owned();
    let del = [
        ("Action", "DeleteIpsecServer"),
        ("IpsecServerId", id.as_str()),
    ];
    assert_eq!(call(&a, &v1(&del, SECRET)).0, 200);
    wait_active(&a);
    drop(a);
    // The API's state now wins over [ipsec_server]: the deleted server stays deleted.
    let b = api_with(&dir, file);
    let (_, l) = call(&b, &v1(&[("Action", "ListIpsecServers")], SECRET));
    assert_eq!(l["TotalCount"], 0, "{l}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The bytes of an answer, with its random RequestId replaced by `RID`.
fn raw(api: &Arc<Api>, req: &Request) -> (u16, &'static str, String) {
    let r = api.handle(req, "127.0.0.1:1".parse().unwrap());
    let body = String::from_utf8(r.body).unwrap();
    let id_at = body.find("RequestId").expect("a RequestId") + "RequestId".len();
    let id = &body[id_at..];
    let start = id.find(|c: char| c.is_ascii_hexdigit()).unwrap();
    let rid = &id[start..start + 36];
    (r.status, r.content_type, body.replace(rid, "RID"))
}

#[test]
fn answers_are_byte_stable() {
    let dir = tmpdir("bytes");
    let a = api(&dir);
    let missing = [("Action", "DescribeVpnGateway"), ("Format", "XML")];
    assert_eq!(
        raw(&a, &v1(&missing, SECRET)),
        (
            400,
            "application/xml",
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>MissingParam.VpnGatewayId</Code><HostId>127.0.0.1</HostId><Message>The input parameter VpnGatewayId is mandatory.</Message><Recommend>https://github.com/ipsec-server/ipsec-server#control-api-error-codes (MissingParam.VpnGatewayId)</Recommend><RequestId>RID</RequestId></Error>".to_owned()
        )
    );
    let unknown = [("Action", "Nope<&>\"")];
    assert_eq!(
        raw(&a, &v1(&unknown, SECRET)),
        (
            404,
            "application/json",
            r#"{"Code":"InvalidAction.NotFound","HostId":"127.0.0.1","Message":"Specified api \"Nope<&>\\\"\" is not found; this endpoint implements CreateIpsecServer, UpdateIpsecServer, DeleteIpsecServer, ListIpsecServers and DescribeVpnGateway.","Recommend":"https://github.com/ipsec-server/ipsec-server#control-api-error-codes (InvalidAction.NotFound)","RequestId":"RID"}"#.to_owned()
        )
    );
    let create = [
        ("Action", "CreateIpsecServer"),
        ("VpnGatewayId", "vpn-test0001"),
        ("LocalSubnet", "192.168.0.0/24,192.168.1.0/24"),
        ("ClientIpPool", "10.0.0.0/24"),
        ("IpSecServerName", "a<b>&\"c"),
        ("Psk", "psk-0123456789"),
    ];
    let (st, v) = call(&a, &v1(&create, SECRET));
    assert_eq!(st, 200, "{v}");
    let id = v["IpsecServerId"].as_str().unwrap().to_owned();
    let time = v["CreationTime"].as_str().unwrap().to_owned();
    wait_active(&a);
    let list = [("Action", "ListIpsecServers"), ("Format", "XML")];
    let (st, ct, body) = raw(&a, &v1(&list, SECRET));
    assert_eq!((st, ct), (200, "application/xml"));
    assert_eq!(
        body.replace(&id, "ID").replace(&time, "TIME"),
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListIpsecServersResponse><IpsecServers><ClientIpPool>10.0.0.0/24</ClientIpPool><CreationTime>TIME</CreationTime><EffectImmediately>false</EffectImmediately><IDaaSInstanceId></IDaaSInstanceId><IkeConfig><IkeAuthAlg>sha1</IkeAuthAlg><IkeEncAlg>aes</IkeEncAlg><IkeLifetime>86400</IkeLifetime><IkeMode>main</IkeMode><IkePfs>group2</IkePfs><IkeVersion>ikev2</IkeVersion><LocalId></LocalId><RemoteId></RemoteId></IkeConfig><InternetIp></InternetIp><IpsecConfig><IpsecAuthAlg>sha1</IpsecAuthAlg><IpsecEncAlg>aes</IpsecEncAlg><IpsecLifetime>86400</IpsecLifetime><IpsecPfs>group2</IpsecPfs></IpsecConfig><IpsecServerId>ID</IpsecServerId><IpsecServerName>a&lt;b&gt;&amp;&quot;c</IpsecServerName><LocalSubnet>192.168.0.0/24,192.168.1.0/24</LocalSubnet><MaxConnections>1000</MaxConnections><MultiFactorAuthEnabled>false</MultiFactorAuthEnabled><OnlineClientCount>0</OnlineClientCount><Psk>psk-0123456789</Psk><PskEnabled>true</PskEnabled><RegionId>local</RegionId><VpnGatewayId>vpn-test0001</VpnGatewayId></IpsecServers><MaxResults>10</MaxResults><NextToken></NextToken><RequestId>RID</RequestId><TotalCount>1</TotalCount></ListIpsecServersResponse>"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The cluster's store in memory: generations count up by one; `view` is set by the test.
#[derive(Default)]
struct FakeStore {
    doc: Mutex<(u64, Option<Vec<u8>>)>,
    view: Mutex<Option<shared::ClusterView>>,
}

impl SharedDefinition for FakeStore {
    fn store(&self, base: u64, document: Vec<u8>) -> Result<u64, shared::StoreError> {
        let mut d = self.doc.lock().unwrap();
        if d.0 != base {
            return Err(shared::StoreError::Conflict);
        }
        *d = (base + 1, Some(document));
        Ok(base + 1)
    }
    fn view(&self) -> Option<shared::ClusterView> {
        self.view.lock().unwrap().clone()
    }
}

impl FakeStore {
    fn stored(&self) -> Stored {
        let d = self.doc.lock().unwrap();
        Stored {
            generation: d.0,
            document: d.1.clone(),
        }
    }
}

#[test]
fn in_cluster_mode_changes_go_through_the_shared_store() {
    let (da, db) = (tmpdir("shared-a"), tmpdir("shared-b"));
    let (a, b) = (api(&da), api(&db));
    let store = Arc::new(FakeStore::default());
    a.share(store.clone());
    b.share(store.clone());
    let create = |pool| {
        v1(
            &[
                ("Action", "CreateIpsecServer"),
                ("VpnGatewayId", "vpn-test0001"),
                ("LocalSubnet", "192.168.0.0/24"),
                ("ClientIpPool", pool),
                ("ClientToken", "tok-c"),
            ],
            SECRET,
        )
    };
    let (st, made) = call(&a, &create("10.0.0.0/24"));
    assert_eq!(st, 200, "{made}");
    assert_eq!(store.stored().generation, 1);
    // node B has not read generation 1 yet: its change loses the transaction.
    let (st, lost) = call(&b, &create("10.9.0.0/24"));
    assert_eq!((st, &lost["Code"]), (400, &json!("VpnGateway.Configuring")));
    let list = [("Action", "ListIpsecServers")];
    assert_eq!(call(&b, &v1(&list, SECRET)).1["TotalCount"], 0);
    // B applies what it reads; then it answers as A does, the ClientToken included.
    assert_eq!(b.adopt(&store.stored()), Adopted::Applying);
    wait_active(&b);
    assert_eq!(b.applied_generation(), 1);
    assert_eq!(b.adopt(&store.stored()), Adopted::Unchanged);
    let on_b = call(&b, &v1(&list, SECRET)).1;
    assert_eq!(
        on_b["IpsecServers"][0]["IpsecServerId"],
        made["IpsecServerId"]
    );
    let replayed = call(&b, &create("10.0.0.0/24")).1;
    assert_eq!(
        replayed["IpsecServerId"], made["IpsecServerId"],
        "replayed on B"
    );
    // A malformed generation is refused: B keeps serving generation 1...
    *store.doc.lock().unwrap() = (2, Some(b"{\"state\":".to_vec()));
    assert_eq!(b.adopt(&store.stored()), Adopted::Refused);
    assert_eq!(b.applied_generation(), 1);
    let listed = call(&b, &v1(&list, SECRET)).1;
    assert_eq!(listed["IpsecServers"][0]["ClientIpPool"], "10.0.0.0/24");
    // ...and its next change replaces it.
    let id = made["IpsecServerId"].as_str().unwrap();
    let update = [
        ("Action", "UpdateIpsecServer"),
        ("IpsecServerId", id),
        ("LocalSubnet", "192.168.1.0/24"),
    ];
    assert_eq!(call(&b, &v1(&update, SECRET)).0, 200);
    let doc = shared::decode(&store.stored().document.unwrap()).unwrap();
    assert_eq!(doc.state.server.unwrap().local_subnet, ["192.168.1.0/24"]);
    wait_active(&b);
    assert_eq!(b.applied_generation(), 3);
    // DescribeVpnGateway and ListIpsecServers answer for the cluster.
    let describe = [
        ("Action", "DescribeVpnGateway"),
        ("VpnGatewayId", "vpn-test0001"),
    ];
    *store.view.lock().unwrap() = Some(shared::ClusterView {
        generation: 3,
        live: 2,
        behind: vec!["node-a".into()],
        online: 7,
    });
    assert_eq!(call(&b, &v1(&describe, SECRET)).1["Status"], "updating");
    let listed = call(&b, &v1(&list, SECRET)).1;
    assert_eq!(listed["IpsecServers"][0]["OnlineClientCount"], 7);
    store.view.lock().unwrap().as_mut().unwrap().behind.clear();
    assert_eq!(call(&b, &v1(&describe, SECRET)).1["Status"], "active");
    for d in [da, db] {
        let _ = std::fs::remove_dir_all(d);
    }
}
