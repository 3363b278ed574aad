//! Encoding of what the server sends: INFO, MSG/HMSG headers, -ERR.
//!
//! Message headers are written straight into a connection's outbound buffer
//! with a hand-rolled integer formatter; this runs once per delivered message.

use serde::Serialize;

pub const PING: &[u8] = b"PING\r\n";
pub const PONG: &[u8] = b"PONG\r\n";
pub const OK: &[u8] = b"+OK\r\n";
/// The status message sent to a requester when nobody is listening.
pub const NO_RESPONDERS_HDR: &[u8] = b"NATS/1.0 503\r\n\r\n";

/// Appends the decimal form of `n`.
#[inline]
pub fn push_usize(out: &mut Vec<u8>, mut n: usize) {
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&tmp[i..]);
}

/// At least the length of the frame [`push_msg`] writes for these parts
/// (the verb, spaces, both lengths and line ends take at most 64 bytes).
#[inline]
pub fn msg_size(subject: &[u8], sid: &[u8], reply: Option<&[u8]>, msg: &[u8]) -> usize {
    subject.len() + sid.len() + reply.map_or(0, |r| r.len()) + msg.len() + 64
}

/// Appends a full MSG or HMSG frame for one subscription.
/// `hdr_len` is meaningful only when `with_headers`.
#[inline]
#[allow(clippy::too_many_arguments)]
pub fn push_msg(
    out: &mut Vec<u8>,
    subject: &[u8],
    sid: &[u8],
    reply: Option<&[u8]>,
    with_headers: bool,
    hdr_len: usize,
    msg: &[u8],
) {
    out.reserve(msg_size(subject, sid, reply, msg));
    out.extend_from_slice(if with_headers { b"HMSG " } else { b"MSG " });
    out.extend_from_slice(subject);
    out.push(b' ');
    out.extend_from_slice(sid);
    out.push(b' ');
    if let Some(r) = reply {
        out.extend_from_slice(r);
        out.push(b' ');
    }
    if with_headers {
        push_usize(out, hdr_len);
        out.push(b' ');
    }
    push_usize(out, msg.len());
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(msg);
    out.extend_from_slice(b"\r\n");
}

pub fn push_err(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(b"-ERR '");
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(b"'\r\n");
}

/// The INFO fields shared by every connection, in the reference's order.
#[derive(Serialize, Clone, Debug)]
pub struct ServerInfo {
    pub server_id: String,
    pub server_name: String,
    pub version: String,
    pub proto: u32,
    pub go: String,
    pub host: String,
    pub port: u16,
    pub headers: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub auth_required: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub tls_required: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub tls_verify: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub tls_available: bool,
    /// -1 for no limit (a client whose account lifts it).
    pub max_payload: i64,
}

impl ServerInfo {
    /// The INFO line for one connection. The reference joins the parts with
    /// a space, so the line ends in a blank before CRLF; clients expect it.
    pub fn line(&self, client_id: u64, client_ip: &str, nonce: Option<&str>, ldm: bool) -> Vec<u8> {
        let mut json = serde_json::to_string(self).expect("plain struct serializes");
        // Extend the object in place so the shared fields keep their order.
        json.pop();
        json.push_str(",\"client_id\":");
        json.push_str(&client_id.to_string());
        if !client_ip.is_empty() {
            json.push_str(",\"client_ip\":");
            json.push_str(&serde_json::to_string(client_ip).expect("string serializes"));
        }
        if let Some(n) = nonce {
            json.push_str(",\"nonce\":");
            json.push_str(&serde_json::to_string(n).expect("string serializes"));
        }
        if ldm {
            json.push_str(",\"ldm\":true");
        }
        json.push('}');
        let mut out = Vec::with_capacity(json.len() + 8);
        out.extend_from_slice(b"INFO ");
        out.extend_from_slice(json.as_bytes());
        out.extend_from_slice(b" \r\n");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers() {
        for n in [0usize, 7, 10, 99, 1234567890, usize::MAX] {
            let mut v = Vec::new();
            push_usize(&mut v, n);
            assert_eq!(v, n.to_string().as_bytes());
        }
    }

    #[test]
    fn msg_frames() {
        let mut v = Vec::new();
        push_msg(&mut v, b"foo", b"1", None, false, 0, b"hello");
        assert_eq!(v, b"MSG foo 1 5\r\nhello\r\n");
        v.clear();
        push_msg(
            &mut v,
            b"foo",
            b"1",
            Some(b"bar"),
            true,
            12,
            b"NATS/1.0\r\n\r\nhi",
        );
        assert_eq!(v, b"HMSG foo 1 bar 12 14\r\nNATS/1.0\r\n\r\nhi\r\n");
    }

    #[test]
    fn info_line_keeps_field_order_and_trailing_blank() {
        let info = ServerInfo {
            server_id: "ID".into(),
            server_name: "N".into(),
            version: "2.9.10".into(),
            proto: 1,
            go: "natrix".into(),
            host: "127.0.0.1".into(),
            port: 4222,
            headers: true,
            auth_required: false,
            tls_required: false,
            tls_verify: false,
            tls_available: false,
            max_payload: 1048576,
        };
        let line = String::from_utf8(info.line(5, "127.0.0.1", None, false)).unwrap();
        assert_eq!(
            line,
            "INFO {\"server_id\":\"ID\",\"server_name\":\"N\",\"version\":\"2.9.10\",\"proto\":1,\"go\":\"natrix\",\
             \"host\":\"127.0.0.1\",\"port\":4222,\"headers\":true,\"max_payload\":1048576,\"client_id\":5,\
             \"client_ip\":\"127.0.0.1\"} \r\n"
        );
    }
}
