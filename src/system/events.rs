//! The JSON of the system account's events and answers, field for field
//! (names, order, omitted empties) as the reference writes them.

use std::time::SystemTime;

use serde::Serialize;
use serde_json::Value;

use super::System;
use crate::config::GLOBAL_ACCOUNT;
use crate::monitor::snapshot::ConnInfo;
use crate::timefmt::rfc3339;

/// The `server` object: which server sent it, its sequence and time.
#[derive(Clone, Debug, Serialize)]
pub struct EventServer {
    pub name: String,
    pub host: String,
    pub id: String,
    pub ver: String,
    pub seq: u64,
    pub jetstream: bool,
    pub time: String,
}

/// Messages and bytes.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct DataStats {
    pub msgs: u64,
    pub bytes: u64,
}

fn is_empty(s: &str) -> bool {
    s.is_empty()
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// A client as events describe it (the reference's ClientInfo).
#[derive(Clone, Debug, Serialize)]
pub struct ClientInfo {
    pub start: String,
    #[serde(skip_serializing_if = "is_empty")]
    pub host: String,
    #[serde(skip_serializing_if = "is_zero")]
    pub id: u64,
    pub acc: String,
    #[serde(skip_serializing_if = "is_empty")]
    pub user: String,
    #[serde(skip_serializing_if = "is_empty")]
    pub name: String,
    #[serde(skip_serializing_if = "is_empty")]
    pub lang: String,
    #[serde(skip_serializing_if = "is_empty")]
    pub ver: String,
    /// Round trip in nanoseconds (a Go duration).
    #[serde(skip_serializing_if = "is_zero")]
    pub rtt: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop: Option<String>,
    #[serde(skip_serializing_if = "is_empty")]
    pub jwt: String,
    #[serde(skip_serializing_if = "is_empty")]
    pub issuer_key: String,
    #[serde(skip_serializing_if = "is_empty")]
    pub name_tag: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    pub kind: &'static str,
    pub client_type: &'static str,
}

impl ClientInfo {
    pub fn of(c: &ConnInfo, stopped: bool) -> ClientInfo {
        ClientInfo {
            start: rfc3339(c.start),
            host: c.ip.clone(),
            id: c.cid,
            acc: c.account.clone(),
            // Before authentication, the user CONNECT named.
            user: if c.user.is_empty() {
                c.connect_user.clone()
            } else {
                c.user.clone()
            },
            name: c.name.clone().unwrap_or_default(),
            lang: c.lang.clone().unwrap_or_default(),
            ver: c.version.clone().unwrap_or_default(),
            rtt: if stopped { c.rtt.as_nanos() as u64 } else { 0 },
            stop: if stopped {
                Some(rfc3339(c.stop.unwrap_or_else(SystemTime::now)))
            } else {
                None
            },
            jwt: c.jwt.clone().unwrap_or_default(),
            issuer_key: c.issuer_key.clone().unwrap_or_default(),
            name_tag: c.name_tag.clone().unwrap_or_default(),
            tags: c.tags.clone(),
            kind: "Client",
            client_type: "nats",
        }
    }
}

#[derive(Serialize)]
struct ConnectEvent {
    #[serde(rename = "type")]
    kind: &'static str,
    id: String,
    timestamp: String,
    server: EventServer,
    client: ClientInfo,
}

#[derive(Serialize)]
struct DisconnectEvent {
    #[serde(rename = "type")]
    kind: &'static str,
    id: String,
    timestamp: String,
    server: EventServer,
    client: ClientInfo,
    sent: DataStats,
    received: DataStats,
    reason: String,
}

/// One account's connections and traffic (the reference's AccountStat).
#[derive(Clone, Debug, Default, Serialize)]
pub struct AccountStat {
    pub acc: String,
    pub conns: u64,
    pub leafnodes: u64,
    pub total_conns: u64,
    pub sent: DataStats,
    pub received: DataStats,
    pub slow_consumers: u64,
}

#[derive(Serialize)]
struct AccountConnsEvent<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    id: String,
    timestamp: String,
    server: EventServer,
    #[serde(flatten)]
    stat: &'a AccountStat,
}

/// The server's statistics (the reference's ServerStats).
#[derive(Clone, Debug, Default, Serialize)]
pub struct ServerStats {
    pub start: String,
    pub mem: u64,
    pub cores: usize,
    /// A Go float64: whole numbers without a fraction.
    pub cpu: Value,
    pub connections: usize,
    pub total_connections: u64,
    pub active_accounts: usize,
    pub subscriptions: u64,
    pub sent: DataStats,
    pub received: DataStats,
    pub slow_consumers: u64,
    pub active_servers: u64,
}

fn to_vec<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).expect("event types serialize")
}

impl System {
    /// `$SYS.ACCOUNT.<account>.CONNECT` for a client that just
    /// authenticated; none for the global account, as the reference.
    pub fn connect_event(&self, c: &ConnInfo) -> Option<(String, Vec<u8>)> {
        if c.account.is_empty() || c.account == GLOBAL_ACCOUNT {
            return None;
        }
        let ev = ConnectEvent {
            kind: "io.nats.server.advisory.v1.client_connect",
            id: self.event_id(),
            timestamp: rfc3339(SystemTime::now()),
            server: self.server(),
            client: ClientInfo::of(c, false),
        };
        Some((format!("$SYS.ACCOUNT.{}.CONNECT", c.account), to_vec(&ev)))
    }

    /// `$SYS.ACCOUNT.<account>.DISCONNECT` for a closed client that had
    /// authenticated; none for the global account.
    pub fn disconnect_event(&self, c: &ConnInfo) -> Option<(String, Vec<u8>)> {
        if c.account.is_empty() || c.account == GLOBAL_ACCOUNT {
            return None;
        }
        let subject = format!("$SYS.ACCOUNT.{}.DISCONNECT", c.account);
        Some((
            subject,
            self.closed_event(c, c.reason.unwrap_or("Client Closed")),
        ))
    }

    /// `$SYS.SERVER.<id>.CLIENT.AUTH.ERR` for a client refused at CONNECT.
    pub fn auth_error_event(&self, c: &ConnInfo) -> (String, Vec<u8>) {
        let subject = format!("$SYS.SERVER.{}.CLIENT.AUTH.ERR", self.server_id);
        (subject, self.closed_event(c, "Authentication Failure"))
    }

    fn closed_event(&self, c: &ConnInfo, reason: &str) -> Vec<u8> {
        let now = SystemTime::now();
        let mut client = ClientInfo::of(c, true);
        if c.account.is_empty() {
            "N/A".clone_into(&mut client.acc);
        }
        let ev = DisconnectEvent {
            kind: "io.nats.server.advisory.v1.client_disconnect",
            id: self.event_id(),
            timestamp: rfc3339(c.stop.unwrap_or(now)),
            server: self.server(),
            client,
            // As the reference: what the client sent is the server's
            // "in", what it received the server's "out".
            sent: DataStats {
                msgs: c.in_msgs,
                bytes: c.in_bytes,
            },
            received: DataStats {
                msgs: c.out_msgs,
                bytes: c.out_bytes,
            },
            reason: reason.to_string(),
        };
        to_vec(&ev)
    }

    /// The account connections event (`$SYS.ACCOUNT.<account>.SERVER.CONNS`
    /// and the answer to `$SYS.REQ.ACCOUNT.<account>.CONNS`).
    pub fn account_conns_event(&self, stat: &AccountStat) -> Vec<u8> {
        to_vec(&AccountConnsEvent {
            kind: "io.nats.server.advisory.v1.account_connections",
            id: self.event_id(),
            timestamp: rfc3339(SystemTime::now()),
            server: self.server(),
            stat,
        })
    }

    /// `{"server":…,"statsz":…}`.
    pub fn statsz_msg(&self, stats: &ServerStats) -> Vec<u8> {
        #[derive(Serialize)]
        struct Msg<'a> {
            server: EventServer,
            statsz: &'a ServerStats,
        }
        to_vec(&Msg {
            server: self.server(),
            statsz: stats,
        })
    }

    /// The reference's ServerAPIResponse: `data` on success, `error`
    /// (code and description) otherwise. An endpoint's own failure (500)
    /// also carries `"data":null`, as the reference's typed nil does; a
    /// request whose options do not decode (400) has no `data`.
    pub fn api_response(&self, answer: Result<Value, (u16, String)>) -> Vec<u8> {
        #[derive(Serialize)]
        struct ApiError {
            code: u16,
            #[serde(skip_serializing_if = "String::is_empty")]
            description: String,
        }
        #[derive(Serialize)]
        struct Resp {
            server: EventServer,
            #[serde(skip_serializing_if = "Option::is_none")]
            data: Option<Value>,
            #[serde(skip_serializing_if = "Option::is_none")]
            error: Option<ApiError>,
        }
        let (data, error) = match answer {
            Ok(v) => (Some(v), None),
            Err((code, description)) => (
                (code == 500).then_some(Value::Null),
                Some(ApiError { code, description }),
            ),
        };
        to_vec(&Resp {
            server: self.server(),
            data,
            error,
        })
    }

    /// The `$SYS.SERVER.<id>.SHUTDOWN` event: the server object alone.
    pub fn shutdown_event(&self) -> (String, Vec<u8>) {
        (
            format!("$SYS.SERVER.{}.SHUTDOWN", self.server_id),
            to_vec(&self.server()),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn conn(account: &str) -> ConnInfo {
        ConnInfo {
            cid: 7,
            ip: "127.0.0.1".into(),
            port: 5000,
            start: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            last_activity: SystemTime::UNIX_EPOCH,
            stop: Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_001)),
            reason: Some("Client Closed"),
            rtt: Duration::from_micros(250),
            pending: 0,
            in_msgs: 3,
            out_msgs: 4,
            in_bytes: 30,
            out_bytes: 40,
            name: Some("svc".into()),
            lang: Some("go".into()),
            version: Some("1.2.3".into()),
            tls_version: None,
            tls_cipher: None,
            user: "alice".into(),
            account: account.into(),
            connect_user: "alice".into(),
            jwt: None,
            issuer_key: None,
            name_tag: None,
            tags: Vec::new(),
            subs: Vec::new(),
            num_subs: 0,
            tls_peer_certs: Vec::new(),
            shard: 0,
        }
    }

    fn sys() -> System {
        let (tx, _rx) = std::sync::mpsc::channel();
        System::new("SYS", "NSERVER", "srv", "127.0.0.1", tx)
    }

    #[test]
    fn global_account_clients_make_no_account_events() {
        let s = sys();
        assert!(s.connect_event(&conn("$G")).is_none());
        assert!(s.disconnect_event(&conn("$G")).is_none());
    }

    #[test]
    fn disconnect_event_has_the_reference_shape() {
        let s = sys();
        let (subject, body) = s.disconnect_event(&conn("A")).unwrap();
        assert_eq!(subject, "$SYS.ACCOUNT.A.DISCONNECT");
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["type"], "io.nats.server.advisory.v1.client_disconnect");
        assert_eq!(v["server"]["id"], "NSERVER");
        assert_eq!(v["server"]["name"], "srv");
        assert_eq!(v["client"]["acc"], "A");
        assert_eq!(v["client"]["id"], 7);
        assert_eq!(v["client"]["rtt"], 250_000);
        assert_eq!(v["client"]["kind"], "Client");
        assert_eq!(v["client"]["client_type"], "nats");
        assert_eq!(v["sent"]["msgs"], 3);
        assert_eq!(v["received"]["bytes"], 40);
        assert_eq!(v["reason"], "Client Closed");
        assert_eq!(v["client"]["stop"], "2023-11-14T22:13:21Z");
        let text = String::from_utf8(body).unwrap();
        assert!(text.starts_with("{\"type\":"), "{text}");
    }

    #[test]
    fn api_errors_carry_code_and_description() {
        let s = sys();
        let v: Value = serde_json::from_slice(&s.api_response(Err((400, "bad".into())))).unwrap();
        assert_eq!(v["error"]["code"], 400);
        assert_eq!(v["error"]["description"], "bad");
        assert!(v.get("data").is_none());
        let v: Value = serde_json::from_slice(&s.api_response(Err((500, "x".into())))).unwrap();
        assert_eq!(v["error"]["code"], 500);
        assert_eq!(v.get("data"), Some(&Value::Null));
    }
}
