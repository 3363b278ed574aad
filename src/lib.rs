//! natrix: a NATS-compatible message broker, thread-per-core on io_uring.
//!
//! Data flows one way through the modules: `server` binds the listeners and
//! starts one `shard` per core; each shard owns its connections (`conn`),
//! which parse input with `proto` and hand messages to their shard. The
//! shard matches them in its own `sublist` and hands them to subscribers
//! through the narrow interface of `fanout`, so routing never calls back
//! into the connection module; it reaches other shards only through the
//! `ShardMsg`s of `shard`. Nothing on the message path takes a lock.
//!
//! Security (`security/`): `auth` checks a CONNECT once and binds the
//! connection to an account (`account`) and to permissions compiled per
//! shard (`authz`); `explain` answers offline why an operation would be
//! allowed or denied.
//!
//! Tools: `jwtcli` is `natrix jwt`, which makes and edits operator-mode
//! JWTs in an nsc-compatible store.

pub mod cli;
pub mod config;
pub mod conn;
pub mod fanout;
pub mod fxhash;
pub mod jwtcli;
pub mod log;
pub mod monitor;
pub mod options;
pub mod outbuf;
pub mod plane;
pub mod proto;
#[cfg(test)]
mod reactor_tests;
pub mod security;
pub mod server;
pub mod shard;
pub mod subject;
pub mod sublist;
pub mod system;
pub mod timefmt;
pub mod transform;
