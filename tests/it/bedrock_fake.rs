//! A fake Bedrock runtime on loopback for `bedrock.rs`: it checks the wire as AWS documents it
//! (POST `/model/{modelId}/converse` or `/converse-stream`, a JSON Converse body, and a SigV4
//! `Authorization` that it RECOMPUTES from the request it received with the secret it knows:
//! canonical request, string to sign, signing key, written out here from AWS's description,
//! independently of the `aws-sigv4` crate litegate signs with), answers in Converse's JSON and
//! streams real binary event-stream messages (encoded by `aws-smithy-eventstream`). A request
//! whose signature does not match gets Bedrock's 403 `InvalidSignatureException`.

use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::io::{BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

/// What the fake received.
pub struct Seen {
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Value,
    /// The signature recomputed from the request matched its `Authorization`.
    pub signature_ok: bool,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

pub type Log = Arc<Mutex<Vec<Seen>>>;

/// A fake that knows one secret key (of whatever access key id the request names).
pub fn start(secret: &'static str) -> (u16, Log) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    let seen: Log = Arc::default();
    let s2 = seen.clone();
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(c) = c else { continue };
            let s = s2.clone();
            std::thread::spawn(move || serve(c, &s, secret));
        }
    });
    (port, seen)
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn hmac(key: &[u8], data: &str) -> Vec<u8> {
    let mut m = Hmac::<Sha256>::new_from_slice(key).expect("hmac key");
    m.update(data.as_bytes());
    m.finalize().into_bytes().to_vec()
}

/// SigV4's URI encoding of one path segment (unreserved characters kept).
fn uri_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Recomputes the request's SigV4 signature (service `bedrock`) and compares it. AWS: every
/// service but S3 encodes the (already encoded) path segments once more.
pub fn signature_ok(
    method: &str,
    path: &str,
    headers: &[(String, String)],
    body: &[u8],
    secret: &str,
) -> bool {
    let h = |n: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(n))
            .map(|(_, v)| v.as_str())
    };
    let Some(auth) = h("authorization") else {
        return false;
    };
    let Some(rest) = auth.strip_prefix("AWS4-HMAC-SHA256 ") else {
        return false;
    };
    let part = |name: &str| {
        rest.split(", ")
            .find_map(|p| p.strip_prefix(name))
            .unwrap_or("")
            .to_string()
    };
    let (credential, signed, signature) = (
        part("Credential="),
        part("SignedHeaders="),
        part("Signature="),
    );
    let scope: Vec<&str> = credential.split('/').collect();
    if scope.len() != 5 || scope[3] != "bedrock" || scope[4] != "aws4_request" {
        return false;
    }
    let (date, region) = (scope[1], scope[2]);
    let Some(amz_date) = h("x-amz-date") else {
        return false;
    };
    if !amz_date.starts_with(date) {
        return false;
    }
    // The headers AWS requires to be signed, and nothing the client did not send.
    let names: Vec<&str> = signed.split(';').collect();
    if !names.contains(&"host") || !names.contains(&"x-amz-date") {
        return false;
    }
    if h("x-amz-security-token").is_some() && !names.contains(&"x-amz-security-token") {
        return false;
    }
    let mut canonical_headers = String::new();
    for n in &names {
        let Some(v) = h(n) else { return false };
        canonical_headers.push_str(&format!("{n}:{}\n", v.trim()));
    }
    let canonical_uri: Vec<String> = path.split('/').map(uri_encode).collect();
    let canonical = format!(
        "{method}\n{}\n\n{canonical_headers}\n{signed}\n{}",
        canonical_uri.join("/"),
        hex(&Sha256::digest(body))
    );
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{date}/{region}/bedrock/aws4_request\n{}",
        hex(&Sha256::digest(canonical.as_bytes()))
    );
    let k = hmac(format!("AWS4{secret}").as_bytes(), date);
    let k = hmac(&k, region);
    let k = hmac(&k, "bedrock");
    let k = hmac(&k, "aws4_request");
    hex(&hmac(&k, &to_sign)) == signature
}

/// One event-stream message.
pub fn event(kind: &str, payload: Value) -> Vec<u8> {
    use aws_smithy_types::event_stream::{Header, HeaderValue, Message};
    let m = Message::new(payload.to_string().into_bytes())
        .add_header(Header::new(
            ":message-type",
            HeaderValue::String("event".into()),
        ))
        .add_header(Header::new(
            ":event-type",
            HeaderValue::String(kind.to_string().into()),
        ))
        .add_header(Header::new(
            ":content-type",
            HeaderValue::String("application/json".into()),
        ));
    let mut out = Vec::new();
    aws_smithy_eventstream::frame::write_message_to(&m, &mut out).expect("encode");
    out
}

fn exception(kind: &str, message: &str) -> Vec<u8> {
    use aws_smithy_types::event_stream::{Header, HeaderValue, Message};
    let m = Message::new(json!({ "message": message }).to_string().into_bytes())
        .add_header(Header::new(
            ":message-type",
            HeaderValue::String("exception".into()),
        ))
        .add_header(Header::new(
            ":exception-type",
            HeaderValue::String(kind.to_string().into()),
        ));
    let mut out = Vec::new();
    aws_smithy_eventstream::frame::write_message_to(&m, &mut out).expect("encode");
    out
}

/// The usage every answer reports: 10 input, 4 cache-read, 2 cache-write, 20 output tokens.
pub fn usage() -> Value {
    json!({"inputTokens": 10, "outputTokens": 20, "totalTokens": 36,
           "cacheReadInputTokens": 4, "cacheWriteInputTokens": 2})
}

fn text_stream() -> Vec<u8> {
    let mut b = Vec::new();
    b.extend(event("messageStart", json!({"role": "assistant"})));
    for t in ["Hello", " world"] {
        b.extend(event(
            "contentBlockDelta",
            json!({"contentBlockIndex": 0, "delta": {"text": t}, "p": "abcdefgh"}),
        ));
    }
    b.extend(event("contentBlockStop", json!({"contentBlockIndex": 0})));
    b.extend(event("messageStop", json!({"stopReason": "end_turn"})));
    b.extend(event(
        "metadata",
        json!({"usage": usage(), "metrics": {"latencyMs": 12}}),
    ));
    b
}

fn tool_stream() -> Vec<u8> {
    let mut b = Vec::new();
    b.extend(event("messageStart", json!({"role": "assistant"})));
    b.extend(event(
        "contentBlockStart",
        json!({"contentBlockIndex": 0,
               "start": {"toolUse": {"toolUseId": "tooluse_1", "name": "weather"}}}),
    ));
    for part in ["{\"city\":", "\"Paris\"}"] {
        b.extend(event(
            "contentBlockDelta",
            json!({"contentBlockIndex": 0, "delta": {"toolUse": {"input": part}}}),
        ));
    }
    b.extend(event("contentBlockStop", json!({"contentBlockIndex": 0})));
    b.extend(event("messageStop", json!({"stopReason": "tool_use"})));
    b.extend(event("metadata", json!({"usage": usage()})));
    b
}

fn serve(c: TcpStream, seen: &Mutex<Vec<Seen>>, secret: &str) {
    let mut r = BufReader::new(c.try_clone().expect("clone"));
    let mut w = c;
    let Some((method, path, headers, raw)) = crate::upstream::read_request(&mut r) else {
        return;
    };
    let ok = signature_ok(&method, &path, &headers, &raw, secret)
        || headers
            .iter()
            .any(|(k, v)| k.eq_ignore_ascii_case("authorization") && v == "Bearer bedrock-api-key");
    let body: Value = serde_json::from_slice(&raw).unwrap_or(Value::Null);
    let model = path
        .strip_prefix("/model/")
        .and_then(|p| p.rsplit_once('/'))
        .map(|(m, _)| m.to_string())
        .unwrap_or_default();
    let stream = path.ends_with("/converse-stream");
    let access_key = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("authorization"))
        .and_then(|(_, v)| v.split("Credential=").nth(1))
        .and_then(|c| c.split('/').next())
        .unwrap_or("")
        .to_string();
    seen.lock().expect("lock").push(Seen {
        path: path.clone(),
        headers,
        body,
        signature_ok: ok,
    });
    let json_ct = "application/json";
    let es_ct = "application/vnd.amazon.eventstream";
    let (status, ctype, errtype, out): (u16, &str, Option<&str>, Vec<u8>) = if method != "POST" {
        (405, json_ct, None, b"{}".to_vec())
    } else if !ok {
        let m = "The request signature we calculated does not match the signature you provided.";
        (
            403,
            json_ct,
            Some("InvalidSignatureException:http://internal.amazon.com/coral/com.amazon.coral.service/"),
            json!({ "message": m }).to_string().into_bytes(),
        )
    } else if model == "err.model" {
        // Echoes the access key id, as some AWS errors do: it must not reach the caller.
        let m = format!("The provided model identifier is invalid (key {access_key}).");
        (
            400,
            json_ct,
            Some("ValidationException:http://internal.amazon.com/coral/com.amazon.bedrock/"),
            json!({ "message": m }).to_string().into_bytes(),
        )
    } else if model == "throttle.model" {
        (
            429,
            json_ct,
            Some("ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/"),
            json!({"message": "Too many requests, please wait before trying again."})
                .to_string()
                .into_bytes(),
        )
    } else if stream {
        let b = match model.as_str() {
            "tool.model" => tool_stream(),
            "corrupt.model" => {
                let mut b = event("messageStart", json!({"role": "assistant"}));
                let mut bad = event(
                    "contentBlockDelta",
                    json!({"contentBlockIndex": 0, "delta": {"text": "Hi"}}),
                );
                let at = bad.len() - 6;
                bad[at] ^= 0x20;
                b.extend(bad);
                b.extend(text_stream());
                b
            }
            "huge.model" => {
                let mut b = event("messageStart", json!({"role": "assistant"}));
                // A prelude announcing 64 MiB; its bytes never come.
                b.extend_from_slice(&(64u32 << 20).to_be_bytes());
                b.extend_from_slice(&[0u8; 8]);
                b
            }
            "exc.model" => {
                let mut b = event("messageStart", json!({"role": "assistant"}));
                b.extend(event(
                    "contentBlockDelta",
                    json!({"contentBlockIndex": 0, "delta": {"text": "Hi"}}),
                ));
                b.extend(exception(
                    "throttlingException",
                    &format!("slow down, {access_key}"),
                ));
                b
            }
            _ => text_stream(),
        };
        (200, es_ct, None, b)
    } else if model == "tool.model" {
        (
            200,
            json_ct,
            None,
            json!({"output": {"message": {"role": "assistant", "content": [
                    {"toolUse": {"toolUseId": "tooluse_1", "name": "weather",
                                 "input": {"city": "Paris"}}}]}},
                "stopReason": "tool_use", "usage": usage(), "metrics": {"latencyMs": 9}})
            .to_string()
            .into_bytes(),
        )
    } else {
        (
            200,
            json_ct,
            None,
            json!({"output": {"message": {"role": "assistant",
                    "content": [{"text": "Hello world"}]}},
                "stopReason": "max_tokens", "usage": usage(), "metrics": {"latencyMs": 9}})
            .to_string()
            .into_bytes(),
        )
    };
    let mut head = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n\
         Connection: close\r\nx-amzn-RequestId: 5e0c2f1a-0000-4000-8000-000000000000\r\n",
        out.len()
    );
    if let Some(t) = errtype {
        head.push_str(&format!("x-amzn-ErrorType: {t}\r\n"));
    }
    head.push_str("\r\n");
    let _ = w.write_all(head.as_bytes());
    let _ = w.write_all(&out);
    let _ = w.flush();
}
