//! How answers look on the wire: the JSON body (the action's object plus `RequestId`, or the
//! error object `RequestId, HostId, Code, Message, Recommend`), rendered as JSON or, with
//! `Format=XML`, as the XML of the RPC API (root `<Action>Response` or `Error`).

use serde_json::{json, Value};

use super::errors::ApiError;
use super::http::Response;

/// A successful action's answer: its object with `RequestId` added.
pub(super) fn success_body(mut v: Value, request_id: &str) -> Value {
    if let Value::Object(m) = &mut v {
        m.insert("RequestId".into(), Value::String(request_id.to_owned()));
    }
    v
}

/// An error's answer; `host` is the request's `Host` header.
pub(super) fn error_body(e: &ApiError, request_id: &str, host: &str) -> Value {
    json!({
        "RequestId": request_id,
        "HostId": host,
        "Code": e.code,
        "Message": e.message,
        "Recommend": format!("https://github.com/ipsec-server/ipsec-server#control-api-error-codes ({})", e.code),
    })
}

/// The HTTP response carrying `body`: XML if `xml`, else JSON.
pub(super) fn response(status: u16, action: &str, body: &Value, xml: bool) -> Response {
    if xml {
        let root = if status == 200 {
            format!("{action}Response")
        } else {
            "Error".to_owned()
        };
        Response {
            status,
            content_type: "application/xml",
            body: render_xml(&root, body).into_bytes(),
        }
    } else {
        Response {
            status,
            content_type: "application/json",
            body: body.to_string().into_bytes(),
        }
    }
}

/// JSON → the XML the RPC API returns: objects become elements, arrays repeat their key.
fn render_xml(root: &str, v: &Value) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
    xml_element(&mut out, root, v);
    out
}

fn xml_element(out: &mut String, name: &str, v: &Value) {
    match v {
        Value::Array(items) => {
            for item in items {
                xml_element(out, name, item);
            }
        }
        Value::Object(m) => {
            out.push_str(&format!("<{name}>"));
            for (k, v) in m {
                xml_element(out, k, v);
            }
            out.push_str(&format!("</{name}>"));
        }
        Value::Null => out.push_str(&format!("<{name}/>")),
        Value::String(s) => out.push_str(&format!("<{name}>{}</{name}>", xml_escape(s))),
        other => out.push_str(&format!("<{name}>{other}</{name}>")),
    }
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_nests_objects_repeats_arrays_and_escapes_text() {
        let v = json!({"A": [1, 2], "B": {"C": null, "D": "x<&>\"y"}, "E": true});
        assert_eq!(
            render_xml("R", &v),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><R><A>1</A><A>2</A><B><C/><D>x&lt;&amp;&gt;&quot;y</D></B><E>true</E></R>"
        );
    }
}
